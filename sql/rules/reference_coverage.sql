-- REF-001  warning  grain: line x reference family
-- No complete reference data covers the line's date of service for a family (NCCI PTP, MUE), or no
-- Medicare therapy threshold is known for its year (kx: MOD-006 cannot total against one): that
-- family was not checked for the line. Unknown is not clean: the line is reported as unchecked, with
-- the reason in `actual` (none loaded for the date, or the release in force is incomplete: parts
-- missing, a file truncated). Summaries group these lines by family and reason (one line per cause).
-- Inputs: audit_lines, dos_versions (from _prepare.sql). See docs/reference-data.md for coverage.
WITH families(kind, label) AS (VALUES ('ptp', 'NCCI PTP'), ('mue', 'MUE')),
unchecked AS (
    SELECT l.*, f.kind, f.label,
           CASE f.kind WHEN 'ptp' THEN d.ptp_unchecked ELSE d.mue_unchecked END AS reason,
           CASE f.kind WHEN 'ptp' THEN d.ptp_release ELSE d.mue_release END AS release
    FROM audit_lines l
    JOIN dos_versions d USING (date_of_service)
    JOIN families f ON (f.kind = 'ptp' AND d.ptp_version IS NULL) OR (f.kind = 'mue' AND d.mue_version IS NULL)
)
SELECT 'REF-001' AS rule_id, 'coverage' AS family, 'warning' AS severity,
       claim_id, line_number, patient_id, rendering_npi, date_of_service, procedure_code,
       kind AS related_code,                    -- which family is unchecked (keeps fingerprints apart)
       [line_ref] AS related_lines,
       label || ' reference in force on ' || strftime(date_of_service, '%Y-%m-%d') AS expected,
       reason AS actual,
       'No complete ' || label || ' reference covers ' || strftime(date_of_service, '%Y-%m-%d') || ' (' || reason
           || '): the ' || label || ' checks were not run for this line (unchecked, not passed).' AS message,
       CASE WHEN release IS NULL
            THEN 'Import the CMS ' || label || ' file in force on that date (claimaudit refdata import) and re-run.'
            ELSE 'Import the complete ' || label || ' ' || release || ' (every part file, downloaded again if '
                 || 'truncated) with claimaudit refdata import, and re-run.' END AS recommended_action,
       NULL AS amount_at_risk,
       'n/a (unchecked)' AS predicted_carc,
       'reference coverage (' || kind || ')' || coalesce(': ' || release, '') AS reference
FROM unchecked

UNION ALL
-- kx: a therapy line under a profile that switches MOD-006 on, in a year with no KX threshold loaded
SELECT 'REF-001', 'coverage', 'warning',
       l.claim_id, l.line_number, l.patient_id, l.rendering_npi, l.date_of_service, l.procedure_code,
       'kx', [l.line_ref],
       'a Medicare therapy KX threshold for ' || year(l.date_of_service),
       'no KX threshold loaded for ' || year(l.date_of_service),
       'No Medicare therapy KX threshold is loaded for ' || year(l.date_of_service) || ': the KX check (MOD-006) '
           || 'was not run for this line (unchecked, not passed).',
       'Add the year''s KX threshold (the CMS annual update) to the thresholds file and import it '
           || '(claimaudit refdata import), then re-run.',
       NULL, 'n/a (unchecked)', 'reference coverage (kx): data/reference/therapy_thresholds.csv'
FROM audit_lines l JOIN profiles p ON p.profile = l.profile
WHERE list_contains(p.enabled_rules, 'MOD-006')
  AND len(mods_in(l.modifiers, ['GP', 'GO', 'GN'])) = 1
  AND year(l.date_of_service) NOT IN (SELECT year FROM therapy_thresholds)
