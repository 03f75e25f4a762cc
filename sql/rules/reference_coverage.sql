-- REF-001  warning  grain: line x reference family
-- No loaded reference data covers the line's date of service for a family (NCCI PTP, MUE): that
-- family was not checked for the line. Unknown is not clean: the line is reported as unchecked.
-- Inputs: audit_lines, dos_versions (from _prepare.sql). See docs/reference-data.md for coverage.
WITH families(kind, label) AS (VALUES ('ptp', 'NCCI PTP'), ('mue', 'MUE'))
SELECT 'REF-001' AS rule_id, 'coverage' AS family, 'warning' AS severity,
       l.claim_id, l.line_number, l.patient_id, l.rendering_npi, l.date_of_service, l.procedure_code,
       f.kind AS related_code,                    -- which family is unchecked (keeps fingerprints apart)
       [l.line_ref] AS related_lines,
       f.label || ' reference in force on ' || strftime(l.date_of_service, '%Y-%m-%d') AS expected,
       'none loaded' AS actual,
       'No ' || f.label || ' reference data covers ' || strftime(l.date_of_service, '%Y-%m-%d')
           || ': the ' || f.label || ' checks were not run for this line (unchecked, not passed).' AS message,
       'Import the CMS ' || f.label || ' file in force on that date (claimaudit refdata import) and re-run.'
           AS recommended_action,
       NULL AS amount_at_risk,
       'n/a (unchecked)' AS predicted_carc,
       'reference coverage (' || f.kind || ')' AS reference
FROM audit_lines l
JOIN dos_versions d USING (date_of_service)
JOIN families f ON (f.kind = 'ptp' AND d.ptp_version IS NULL) OR (f.kind = 'mue' AND d.mue_version IS NULL)
