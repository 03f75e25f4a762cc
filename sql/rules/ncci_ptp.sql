-- PTP-001 error, PTP-002 error, PTP-003 info   grain: column-2 line (x column-1 code)
-- NCCI procedure-to-procedure edits (billing-rules.md §1; ARCHITECTURE.md rule catalogue).
--  * Scope: same patient + rendering NPI + date of service, across all claims of the run.
--  * An edit row is in force iff effective_date <= DOS <= deletion_date (NULL = '*' = open) in the
--    PTP release in force for the DOS (dos_versions); indicator 9 never fires (ptp_edits omits it).
--  * Indicator 0 -> PTP-001 on the column-2 line, whatever its modifiers.
--  * Indicator 1 -> bypassed (PTP-003, info: documentation must support it) when an NCCI-associated
--    modifier sits where the line's profile requires, else PTP-002:
--      - 59/XE/XS/XP/XU: on the column-2 line; on either line when the profile's placement is
--        'either_line' and DOS >= its either_line_from (Medicare, CR 11168, 2019-07-01);
--      - anatomic modifiers: only when both lines carry anatomic modifiers and they differ
--        (no modifier in common: RT on one, LT on the other);
--      - 24, 25, 57 (go on the E/M line): either line; 27, 58, 78, 79, 91: the column-2 line.
--    76, 77, 22, GP/GO/GN, CQ/CO, KX, AT ... are not NCCI-associated and never bypass.
-- Inputs: audit_lines, dos_versions, ptp_edits, profiles.
WITH mods(distinct_service, anatomic, em_either, col2_other) AS (
    SELECT ['59', 'XE', 'XS', 'XP', 'XU'],
           ['E1', 'E2', 'E3', 'E4', 'FA', 'F1', 'F2', 'F3', 'F4', 'F5', 'F6', 'F7', 'F8', 'F9',
            'TA', 'T1', 'T2', 'T3', 'T4', 'T5', 'T6', 'T7', 'T8', 'T9', 'LT', 'RT', 'LC', 'LD', 'RC', 'LM', 'RI'],
           ['24', '25', '57'],
           ['27', '58', '78', '79', '91']
), lines AS NOT MATERIALIZED (
    SELECT l.*, d.ptp_version
    FROM audit_lines l JOIN dos_versions d USING (date_of_service)
    WHERE d.ptp_version IS NOT NULL
), pairs AS (
    SELECT c2.claim_id, c2.line_number, c2.patient_id, c2.rendering_npi, c2.date_of_service,
           c2.procedure_code, c2.line_ref, c2.line_amount, c2.modifiers AS c2_mods, c2.profile,
           c1.line_ref AS c1_ref, c1.modifiers AS c1_mods,
           e.column_1, e.column_2, e.effective_date, e.deletion_date, e.modifier_indicator, e.rationale,
           e.version, e.source_name, e.source_line
    FROM lines c2
    JOIN ptp_edits e
      ON e.column_2 = c2.procedure_code AND e.version = c2.ptp_version
     AND c2.date_of_service >= e.effective_date
     AND (e.deletion_date IS NULL OR c2.date_of_service <= e.deletion_date)
    JOIN lines c1
      ON c1.patient_id = c2.patient_id AND c1.rendering_npi = c2.rendering_npi
     AND c1.date_of_service = c2.date_of_service AND c1.procedure_code = e.column_1
    -- several rows of one pair in force on the same day would be a file defect: take the newest
    QUALIFY row_number() OVER (PARTITION BY c2.line_ref, c1.line_ref ORDER BY e.effective_date DESC, e.source_line) = 1
), judged AS (
    SELECT p.*,
           pr.carc_ptp,
           (pr.ptp_modifier_placement = 'either_line'
               AND p.date_of_service >= coalesce(pr.ptp_either_line_from, DATE '0001-01-01')) AS either_line,
           mods_in(p.c2_mods, m.distinct_service) AS ds_c2,
           mods_in(p.c1_mods, m.distinct_service) AS ds_c1,
           mods_in(p.c2_mods, m.anatomic) AS an_c2,
           mods_in(p.c1_mods, m.anatomic) AS an_c1,
           mods_in(list_concat(p.c2_mods, p.c1_mods), m.em_either) AS em_any,
           mods_in(p.c2_mods, m.col2_other) AS other_c2
    FROM pairs p
    JOIN profiles pr ON pr.profile = p.profile
    CROSS JOIN mods m
), bypass AS (
    SELECT j.*,
           CASE
             WHEN len(ds_c2) > 0 THEN ds_c2[1] || ' on ' || column_2
             WHEN either_line AND len(ds_c1) > 0 THEN ds_c1[1] || ' on ' || column_1
             WHEN len(an_c2) > 0 AND len(an_c1) > 0 AND len(list_intersect(an_c2, an_c1)) = 0
                  THEN an_c2[1] || '/' || an_c1[1] || ' (different sites)'
             WHEN len(em_any) > 0 THEN em_any[1]
             WHEN len(other_c2) > 0 THEN other_c2[1] || ' on ' || column_2
           END AS bypassed_by
    FROM judged j
), findings AS (
    SELECT b.*,
           CASE WHEN modifier_indicator = 0 THEN 'PTP-001'
                WHEN bypassed_by IS NULL THEN 'PTP-002'
                ELSE 'PTP-003' END AS rule_id
    FROM bypass b
)
SELECT f.rule_id,
       'ncci_ptp' AS family,
       CASE f.rule_id WHEN 'PTP-003' THEN 'info' ELSE 'error' END AS severity,
       f.claim_id, f.line_number, f.patient_id, f.rendering_npi, f.date_of_service, f.procedure_code,
       f.column_1 AS related_code,
       list_sort(list_distinct(list(f.c1_ref) || [any_value(f.line_ref)])) AS related_lines,
       CASE f.rule_id
         WHEN 'PTP-001' THEN 'not billed with ' || f.column_1 || ' on the same day (no modifier allowed)'
         WHEN 'PTP-002' THEN 'an NCCI-associated modifier (59/X{EPSU}) ' ||
              CASE WHEN any_value(f.either_line) THEN 'on either line' ELSE 'on the column-2 line ' || f.column_2 END
              || ', supported by documentation'
         ELSE 'documentation of a distinct service' END AS expected,
       CASE f.rule_id
         WHEN 'PTP-003' THEN 'bypassed by ' || min(f.bypassed_by)
         ELSE 'billed with ' || f.column_1 || ' (' || string_agg(DISTINCT f.c1_ref, ', ' ORDER BY f.c1_ref) || '); modifiers on '
              || f.column_2 || ': ' || coalesce(nullif(array_to_string(any_value(f.c2_mods), ' '), ''), 'none')
       END AS actual,
       CASE f.rule_id
         WHEN 'PTP-001' THEN f.procedure_code || ' cannot be paid with ' || f.column_1
              || ' for the same patient and provider on the same day (NCCI edit, modifier indicator 0): '
              || f.procedure_code || ' will be denied whatever its modifiers.'
         WHEN 'PTP-002' THEN f.procedure_code || ' is the column-2 code of an NCCI edit with ' || f.column_1
              || ' billed the same day; without an NCCI-associated modifier it will be denied.'
         ELSE f.procedure_code || ' with ' || f.column_1 || ' is an NCCI pair bypassed by '
              || min(f.bypassed_by) || ': payable only if the record shows a distinct service.'
       END AS message,
       CASE f.rule_id
         WHEN 'PTP-001' THEN 'Remove ' || f.procedure_code || ' (or correct the code if it was keyed in error); '
              || 'no modifier can bypass this edit.'
         WHEN 'PTP-002' THEN 'If the record shows distinct services (separate 15-minute time blocks, another '
              || 'site or encounter), add 59 or the matching X modifier (XE/XS/XP/XU) '
              || CASE WHEN any_value(f.either_line) THEN 'to either line' ELSE 'to ' || f.procedure_code END
              || '; otherwise remove ' || f.procedure_code || '.'
         ELSE 'Keep the modifier only if the documentation shows distinct time blocks, site or encounter; '
              || 'payers audit this pattern.'
       END AS recommended_action,
       f.line_amount AS amount_at_risk,
       f.carc_ptp AS predicted_carc,
       'NCCI PTP practitioner ' || f.version || ' row ' || f.column_1 || '/' || f.column_2
           || ' eff ' || strftime(f.effective_date, '%Y-%m-%d')
           || ' del ' || coalesce(strftime(f.deletion_date, '%Y-%m-%d'), '*')
           || ' MI ' || f.modifier_indicator || ' (' || f.source_name || ' line ' || f.source_line || ')' AS reference
FROM findings f
GROUP BY f.rule_id, f.claim_id, f.line_number, f.patient_id, f.rendering_npi, f.date_of_service, f.procedure_code,
         f.column_1, f.column_2, f.line_amount, f.carc_ptp, f.version, f.effective_date, f.deletion_date,
         f.modifier_indicator, f.source_name, f.source_line
