-- Lines a rule could not judge, one row per line and cause (unknown is not clean), with the line's
-- amount (the dollars not verified): they go to the table unchecked_lines, which summaries group by
-- cause and history compares with (coverage.py).
-- Line-level reference gaps (REF-001) and timed codes without minutes (TIME-007) are findings of
-- their own and not repeated here.
--  COV-001  a line without a provider discipline, under a profile that switches COV-001 on
--  MOD-005  an untimed service with assistant minutes but no total minutes (10% of what?)
-- Inputs: audit_lines, code_classes, profiles.
SELECT 'COV-001' AS scope, 'no provider discipline on the line (chiropractic coverage needs it)' AS reason,
       l.claim_id, l.line_number, l.patient_id, l.rendering_npi, l.date_of_service, l.line_amount
FROM audit_lines l JOIN profiles p ON p.profile = l.profile
WHERE list_contains(p.enabled_rules, 'COV-001') AND l.provider_discipline IS NULL

UNION ALL
SELECT 'MOD-005', 'assistant minutes on an untimed service without its total minutes',
       l.claim_id, l.line_number, l.patient_id, l.rendering_npi, l.date_of_service, l.line_amount
FROM audit_lines l JOIN profiles p ON p.profile = l.profile
LEFT JOIN code_classes c USING (procedure_code)
WHERE list_contains(p.enabled_rules, 'MOD-005') AND l.date_of_service >= DATE '2020-01-01'
  AND l.assistant_minutes IS NOT NULL AND l.minutes IS NULL AND coalesce(c.code_class, 'other') <> 'timed_15'
  AND len(mods_in(l.modifiers, ['GP', 'GO', 'GN'])) = 1
  AND mods_in(l.modifiers, ['GP', 'GO', 'GN'])[1] IN ('GP', 'GO')
