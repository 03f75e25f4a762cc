-- COV-001 error   grain: line
-- Medicare covers only spinal manipulation 98940, 98941, 98942 from chiropractors (billing-rules.md §4.4,
-- NGS S53): any other service billed by a chiropractor (provider_discipline DC) is not covered, unless the
-- line carries GY (statutorily excluded, billed on purpose to get the denial for a secondary payer).
-- A line without a provider discipline cannot be judged: it is counted as unchecked (_unchecked.sql).
-- On where the line's profile switches COV-001 on. Inputs: audit_lines, profiles.
SELECT 'COV-001' AS rule_id, 'coverage' AS family, 'error' AS severity,
       l.claim_id, l.line_number, l.patient_id, l.rendering_npi, l.date_of_service, l.procedure_code,
       NULL AS related_code, [l.line_ref] AS related_lines,
       'only 98940-98942 from a chiropractor (or GY for a denial on purpose)' AS expected,
       l.procedure_code || ' billed by a chiropractor' AS actual,
       'Medicare covers only spinal manipulation (98940-98942) from a chiropractor; ' || l.procedure_code
           || ' will be denied as a non-covered service.' AS message,
       'If the patient has agreed to pay, add GY so the denial can go to a secondary payer or the patient '
           || '(an ABN is not required for statutory exclusions); otherwise do not bill it to Medicare.'
           AS recommended_action,
       l.line_amount AS amount_at_risk, p.carc_coverage AS predicted_carc,
       'Medicare chiropractic coverage (billing-rules.md §4.4; NGS S53)' AS reference
FROM audit_lines l JOIN profiles p ON p.profile = l.profile
WHERE list_contains(p.enabled_rules, 'COV-001') AND l.provider_discipline = 'DC'
  AND l.procedure_code NOT IN ('98940', '98941', '98942') AND NOT list_contains(l.modifiers, 'GY')
