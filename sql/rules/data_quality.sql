-- DQ-*  warning  grain: line
-- Lines named by a failed *warning* expectation of the data-quality suite (expectations/claim_lines.json,
-- run by claimaudit.quality before the rules). rule_id is the expectation's meta.id. Blocking
-- expectations do not appear here: their lines were quarantined.
-- Inputs: audit_lines, dq_hits, dq_results, profiles.
SELECT h.expectation_id AS rule_id, 'data_quality' AS family, 'warning' AS severity,
       l.claim_id, l.line_number, l.patient_id, l.rendering_npi, l.date_of_service, l.procedure_code,
       NULL AS related_code,
       [l.line_ref] AS related_lines,
       r.description AS expected,
       'fails this check' AS actual,
       'Data quality: this line fails "' || r.description || '".' AS message,
       r.action AS recommended_action,
       l.line_amount AS amount_at_risk,
       'CO-16 (claim lacks information or has a billing error)' AS predicted_carc,
       'data-quality suite expectations/claim_lines.json: ' || h.expectation_id AS reference
FROM dq_hits h
JOIN dq_results r ON r.run_id = h.run_id AND r.expectation_id = h.expectation_id
JOIN audit_lines l ON l.claim_id = h.claim_id AND l.line_number = h.line_number
WHERE h.run_id = getvariable('run_id') AND h.level = 'warning'
