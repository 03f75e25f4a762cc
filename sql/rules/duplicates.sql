-- DUP-001  error  grain: line
-- Another line in the run has the same patient, rendering NPI, date of service, procedure code,
-- modifiers (in any order) and units. The first line of each group (ordered by claim_id,
-- line_number) is taken as the original; every later copy is flagged. Duplicates stay in the data
-- for every other rule, since both were billed.
-- Inputs: audit_lines, profiles. Source: X12 CARC 18 "exact duplicate claim/service" (billing-rules.md §6).
WITH keyed AS NOT MATERIALIZED (
    SELECT l.*, list_sort(l.modifiers) AS modifier_key
    FROM audit_lines l
), candidate_keys AS (   -- phase 1: the hashes of keys that occur more than once. Grouping one 64-bit hash
    -- is ~4x cheaper than grouping the six columns; two different keys that share a hash only add
    -- candidates, which phase 2 (exact keys) does not flag
    SELECT hash(patient_id, rendering_npi, date_of_service, procedure_code, modifier_key, units) AS key_hash
    FROM keyed
    GROUP BY ALL
    HAVING count(*) > 1
), grouped AS (          -- phase 2: order and list the lines of those keys only, grouped by the exact key
    SELECT k.*,
           count(*) OVER w_all AS copies,
           row_number() OVER w AS copy_number,
           first_value(line_ref) OVER w AS original_line,
           list(line_ref) OVER w_all AS group_lines
    FROM keyed k
    WHERE hash(patient_id, rendering_npi, date_of_service, procedure_code, modifier_key, units)
          IN (SELECT key_hash FROM candidate_keys)
    WINDOW w AS (PARTITION BY patient_id, rendering_npi, date_of_service, procedure_code, modifier_key, units
                 ORDER BY claim_id, line_number),
           w_all AS (PARTITION BY patient_id, rendering_npi, date_of_service, procedure_code, modifier_key, units
                     ORDER BY claim_id, line_number ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT 'DUP-001' AS rule_id, 'duplicates' AS family, 'error' AS severity,
       g.claim_id, g.line_number, g.patient_id, g.rendering_npi, g.date_of_service, g.procedure_code,
       NULL AS related_code,
       g.group_lines AS related_lines,
       '1 line' AS expected,
       g.copies || ' identical lines' AS actual,
       'Line ' || g.line_ref || ' repeats line ' || g.original_line || ' exactly (same patient, provider, date, code '
           || g.procedure_code || ', modifiers and units): the payer will deny it as a duplicate.' AS message,
       'Remove the duplicate line; if it was a separate service, bill it with the modifier that distinguishes '
           || 'it (e.g. 76/77, or 59/X where documentation supports a distinct service).' AS recommended_action,
       g.line_amount AS amount_at_risk,
       p.carc_duplicates AS predicted_carc,
       'CARC 18 exact duplicate; original ' || g.original_line AS reference
FROM grouped g
JOIN profiles p ON p.profile = g.profile
WHERE g.copy_number > 1
