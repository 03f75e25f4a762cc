-- MUE-001 error  grain: line        MUE-002 error  grain: day + code
-- Medically Unlikely Edits (billing-rules.md §2). The MUE file in force for the DOS (dos_versions).
--  * MAI 1 (line edit): each line's units against the MUE value; the whole line is denied.
--  * MAI 2/3 (date-of-service edits): units summed per patient + rendering NPI + DOS + code across
--    all lines and claims of the run, modifiers ignored (they cannot bypass a DOS edit); every line
--    of the code that day is at risk. MAI 2 is absolute; MAI 3 can be appealed with records.
-- Inputs: audit_lines, dos_versions, mue_edits, profiles.
WITH lines AS NOT MATERIALIZED (
    SELECT l.*, m.mue_value, m.mue_adjudication_indicator AS mai, m.mue_adjudication_text, m.version,
           m.source_name, m.source_line, p.carc_mue
    FROM audit_lines l
    JOIN dos_versions d USING (date_of_service)
    JOIN mue_edits m ON m.version = d.mue_version AND m.procedure_code = l.procedure_code
    JOIN profiles p ON p.profile = l.profile
), line_edits AS (
    SELECT 'MUE-001' AS rule_id, claim_id, line_number, patient_id, rendering_npi, date_of_service,
           procedure_code, [line_ref] AS related_lines, units AS billed, mue_value, mai, mue_adjudication_text,
           line_amount AS amount_at_risk, carc_mue, version, source_name, source_line
    FROM lines
    WHERE mai = 1 AND units > mue_value
), day_over AS (        -- phase 1: day + code sums over the MUE value (MAI 2/3)
    SELECT patient_id, rendering_npi, date_of_service, procedure_code, sum(units) AS billed
    FROM lines
    WHERE mai IN (2, 3)
    GROUP BY patient_id, rendering_npi, date_of_service, procedure_code
    HAVING sum(units) > any_value(mue_value)
), day_edits AS (        -- phase 2: the lines of those days only
    SELECT 'MUE-002' AS rule_id,
           arg_min(l.claim_id, (l.claim_id, l.line_number)) AS claim_id,
           arg_min(l.line_number, (l.claim_id, l.line_number)) AS line_number,
           o.patient_id, o.rendering_npi, o.date_of_service, o.procedure_code,
           list(l.line_ref ORDER BY l.claim_id, l.line_number) AS related_lines,
           any_value(o.billed) AS billed, any_value(l.mue_value) AS mue_value, any_value(l.mai) AS mai,
           any_value(l.mue_adjudication_text) AS mue_adjudication_text,
           sum(l.line_amount) AS amount_at_risk,
           arg_min(l.carc_mue, (l.claim_id, l.line_number)) AS carc_mue,   -- first line's profile: deterministic
           any_value(l.version) AS version, any_value(l.source_name) AS source_name,
           any_value(l.source_line) AS source_line
    FROM day_over o
    JOIN lines l USING (patient_id, rendering_npi, date_of_service, procedure_code)
    WHERE l.mai IN (2, 3)
    GROUP BY o.patient_id, o.rendering_npi, o.date_of_service, o.procedure_code
)
SELECT e.rule_id, 'mue' AS family, 'error' AS severity,
       e.claim_id, e.line_number, e.patient_id, e.rendering_npi, e.date_of_service, e.procedure_code,
       NULL AS related_code, e.related_lines,
       '<= ' || e.mue_value || ' units ' || CASE WHEN e.mai = 1 THEN 'per line' ELSE 'per day' END AS expected,
       e.billed::INTEGER::VARCHAR || ' units' || CASE WHEN e.mai = 1 THEN ' on the line'
            ELSE ' on ' || len(e.related_lines) || ' line(s) that day' END AS actual,
       CASE WHEN e.mai = 1
            THEN e.procedure_code || ' is billed with ' || e.billed::INTEGER || ' units on one line; the MUE allows '
                 || e.mue_value || ' per line, so the whole line will be denied.'
            ELSE e.procedure_code || ' totals ' || e.billed::INTEGER || ' units for this patient and provider on '
                 || strftime(e.date_of_service, '%Y-%m-%d') || '; the MUE allows ' || e.mue_value
                 || ' per day (' || CASE WHEN e.mai = 2 THEN 'policy edit: cannot be appealed'
                                         ELSE 'clinical edit: appeal needs records' END
                 || '), and modifiers or split lines do not change that.'
       END AS message,
       CASE WHEN e.mai = 1
            THEN 'Bill at most ' || e.mue_value || ' units per line; if more were truly furnished, report them on '
                 || 'separate lines with the modifier that applies (e.g. 76, 91, anatomic) and documentation.'
            WHEN e.mai = 2 THEN 'Reduce ' || e.procedure_code || ' to ' || e.mue_value || ' units for the day; '
                 || 'units above a policy MUE are not payable.'
            ELSE 'Reduce ' || e.procedure_code || ' to ' || e.mue_value || ' units for the day, or keep the records '
                 || 'ready to appeal (clinical MUE).'
       END AS recommended_action,
       e.amount_at_risk,
       e.carc_mue AS predicted_carc,
       'MUE practitioner ' || e.version || ' ' || e.procedure_code || ' = ' || e.mue_value || ' ('
           || e.mue_adjudication_text || '; ' || e.source_name || ' line ' || e.source_line || ')' AS reference
FROM (SELECT * FROM line_edits UNION ALL SELECT * FROM day_edits) e
