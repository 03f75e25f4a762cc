-- MOD-006 error, MOD-010 info   grain: line
-- Medicare therapy thresholds (billing-rules.md §4.3; BBA 2018 §50202). Per beneficiary (patient_id,
-- across all rendering NPIs), calendar year of the DOS and bucket (PT+SLP when the line's one therapy
-- modifier is GP or GN, OT when it is GO), the line amounts (allowed amount, else charge) accumulate in
-- (date_of_service, claim_id, line_number) order, the line itself included, from the beneficiary's
-- prior year-to-date amount when the user supplied one (--therapy-ytd). Every line with exactly one
-- therapy modifier counts, under the profiles that switch MOD-006 or MOD-010 on: lines with KX,
-- duplicates and lines other rules flag count too, they were billed.
--  MOD-006  the running total exceeds the year's KX threshold and the line has no KX (Medicare denies it)
--  MOD-010  the first line whose running total exceeds the targeted-medical-review threshold ($3,000
--           through 2027): the claims are eligible for review; nothing to fix
-- A year with no threshold is unchecked (REF-001 with related_code 'kx', reference_coverage.sql).
-- Thresholds by year: data/reference/therapy_thresholds.csv (or an imported thresholds file).
-- Inputs: kx_lines (this run's lines; in a landing run also the earlier ledger lines of the same
-- beneficiary-years, so an incremental run totals like a full one), audit_lines, therapy_thresholds,
-- therapy_ytd_in_force, profiles.
WITH counted AS (
    SELECT l.claim_id, l.line_number, l.patient_id, l.rendering_npi, l.date_of_service, l.procedure_code, l.line_ref,
           l.line_amount, year(l.date_of_service) AS year,
           CASE mods_in(l.modifiers, ['GP', 'GO', 'GN'])[1] WHEN 'GO' THEN 'OT' ELSE 'PT+SLP' END AS bucket,
           list_contains(l.modifiers, 'KX') AS has_kx,
           list_contains(p.enabled_rules, 'MOD-006') AS kx_rule, list_contains(p.enabled_rules, 'MOD-010') AS tmr_rule,
           p.carc_kx
    FROM kx_lines l JOIN profiles p ON p.profile = l.profile
    WHERE (list_contains(p.enabled_rules, 'MOD-006') OR list_contains(p.enabled_rules, 'MOD-010'))
      AND len(mods_in(l.modifiers, ['GP', 'GO', 'GN'])) = 1
), reachable AS (
    -- the bucket-years whose total can pass a threshold at all: no running total exceeds the prior amount
    -- plus the sum of the positive line amounts, so only these need the ordered running totals
    SELECT c.patient_id, c.year, c.bucket
    FROM counted c
    JOIN therapy_thresholds t USING (year)
    LEFT JOIN therapy_ytd_in_force y ON y.patient_id = c.patient_id AND y.year = c.year AND y.bucket = c.bucket
    GROUP BY c.patient_id, c.year, c.bucket
    HAVING coalesce(any_value(y.amount), 0) + coalesce(sum(greatest(c.line_amount, 0)), 0)
           > least(any_value(t.tmr), any_value(CASE c.bucket WHEN 'OT' THEN t.kx_ot ELSE t.kx_pt_slp END))
), running AS (
    SELECT c.*, coalesce(y.amount, 0) AS prior_ytd,
           coalesce(y.amount, 0) + sum(c.line_amount) OVER w AS total
    FROM counted c
    LEFT JOIN therapy_ytd_in_force y ON y.patient_id = c.patient_id AND y.year = c.year AND y.bucket = c.bucket
    WHERE (c.patient_id, c.year, c.bucket) IN (SELECT (patient_id, year, bucket) FROM reachable)
    WINDOW w AS (PARTITION BY c.patient_id, c.year, c.bucket ORDER BY c.date_of_service, c.claim_id, c.line_number
                 ROWS UNBOUNDED PRECEDING)
), judged AS (
    SELECT r.*, t.tmr, t.source,
           CASE r.bucket WHEN 'OT' THEN t.kx_ot ELSE t.kx_pt_slp END AS threshold,
           -- the first line over the review threshold: none before it in the bucket-year was over
           r.total > t.tmr AND NOT coalesce(bool_or(r.total > t.tmr) OVER (
               PARTITION BY r.patient_id, r.year, r.bucket ORDER BY r.date_of_service, r.claim_id, r.line_number
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS first_over_tmr
    FROM running r JOIN therapy_thresholds t USING (year)
    -- only this run's lines get findings (kx_lines may hold earlier days of a landing ledger)
    WHERE (r.claim_id, r.line_number) IN (SELECT (claim_id, line_number) FROM audit_lines)
)
SELECT 'MOD-006' AS rule_id, 'modifiers' AS family, 'error' AS severity,
       claim_id, line_number, patient_id, rendering_npi, date_of_service, procedure_code,
       bucket AS related_code, [line_ref] AS related_lines,
       'KX (' || year || ' ' || bucket || ' therapy total $' || printf('%,.2f', total) || ' > KX threshold $'
           || printf('%,.2f', threshold) || ')' AS expected,
       'no KX' AS actual,
       'With this line the beneficiary''s ' || year || ' ' || bucket || ' therapy total reaches $'
           || printf('%,.2f', total) || CASE WHEN prior_ytd > 0 THEN ' (from a prior year-to-date $'
           || printf('%,.2f', prior_ytd) || ')' ELSE '' END || ', past the $' || printf('%,.2f', threshold)
           || ' KX threshold, and the line carries no KX: Medicare denies therapy above the threshold without it.'
           AS message,
       'If the therapy is medically necessary and the record shows it, add KX; if not, the service is not payable by '
           || 'Medicare above the threshold (an ABN with GA lets you bill the patient).' AS recommended_action,
       line_amount AS amount_at_risk, carc_kx AS predicted_carc,
       'Medicare therapy KX threshold CY' || year || ' ' || bucket || ' $' || printf('%,.2f', threshold) || ' ('
           || source || ')' AS reference
FROM judged WHERE kx_rule AND threshold IS NOT NULL AND total > threshold AND NOT has_kx

UNION ALL
SELECT 'MOD-010', 'modifiers', 'info',
       claim_id, line_number, patient_id, rendering_npi, date_of_service, procedure_code,
       bucket, [line_ref],
       'year-to-date ' || bucket || ' therapy under $' || printf('%,.2f', tmr) || ' (targeted medical review)',
       '$' || printf('%,.2f', total) || ' with this line',
       'With this line the beneficiary''s ' || year || ' ' || bucket || ' therapy total passes $' || printf('%,.2f', tmr)
           || ' ($' || printf('%,.2f', total) || '): the claims from here on are eligible for targeted medical review.',
       'Nothing to fix: keep the plan of care and the documentation of medical necessity ready for a review.',
       NULL, 'n/a (eligible for review)',
       'Medicare targeted medical review threshold CY' || year || ' $' || printf('%,.2f', tmr) || ' (' || source || ')'
FROM judged WHERE tmr_rule AND first_over_tmr
