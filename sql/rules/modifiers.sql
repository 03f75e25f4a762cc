-- MOD-001..005, MOD-007 error; MOD-008 warning; MOD-009 error   grain: line
-- Therapy and NCCI modifiers (billing-rules.md §4; CR 10176 for MOD-001..003).
--  MOD-001  always-therapy code without GP/GO/GN, where the line's profile requires therapy modifiers
--  MOD-002  more than one of GP/GO/GN on one line
--  MOD-003  discipline-specific code (97161-97164 GP, 97165-97168 GO, 92521-92524/92597/92607 GN) with
--           exactly one therapy modifier, and it is the wrong one (two or more is MOD-002 alone)
--  MOD-004  CQ without GP, or CO without GO (a line with CQ/CO and no therapy modifier also gets MOD-001)
--  MOD-008  59 and an X{EPSU} modifier on the same line
-- Medicare Part B policies, on where the line's profile switches them on (`rules:` in the profile):
--  MOD-005  assistant de minimis (§4.2, DOS >= 2020-01-01): exactly one therapy modifier, GP or GO, and the
--           assistant (PTA/OTA) independently furnished more than 10% of the service: a timed 15-minute
--           code with assistant_minutes >= 2 (more than 10% of one unit, per unit), any other code with
--           assistant_minutes x 10 > minutes (the service as a whole; unchecked without minutes: _unchecked.sql),
--           and the matching CQ (GP) / CO (GO) is missing. GN never (no SLP assistant modifier). At risk
--           from 2022-01-01: 15% of the line (paid at 85%); before, none (the modifier was informational).
--  MOD-007  chiropractic manipulation 98940/98941/98942 without AT, GA or GZ (§4.4): maintenance care
--  MOD-009  97014 (Medicare does not recognize it: bill G0283, §3.3)
-- Which codes are always-therapy or discipline-specific: data/reference/code_classes.csv (or the CMS
-- therapy code list when one is imported). Inputs: audit_lines, code_classes, profiles.
WITH lines AS NOT MATERIALIZED (
    SELECT l.*, coalesce(c.always_therapy, false) AS always_therapy, c.discipline_modifier,
           coalesce(c.code_class, 'other') AS code_class,
           p.therapy_modifiers_required, p.carc_modifiers, p.carc_assistant, p.carc_chiropractic,
           p.carc_invalid_code, p.enabled_rules,
           mods_in(l.modifiers, ['GP', 'GO', 'GN']) AS therapy_mods,
           mods_in(l.modifiers, ['XE', 'XS', 'XP', 'XU']) AS x_mods
    FROM audit_lines l
    LEFT JOIN code_classes c USING (procedure_code)
    JOIN profiles p ON p.profile = l.profile
), checks AS (
    SELECT 'MOD-001' AS rule_id, 'error' AS severity, *,
           'GP, GO or GN' AS expected, 'no therapy modifier' AS actual,
           procedure_code || ' is an always-therapy code and carries no GP/GO/GN modifier: the claim will be '
               || 'returned or the line denied.' AS message,
           'Add GP (physical therapy), GO (occupational therapy) or GN (speech-language pathology) for the plan '
               || 'of care the service was furnished under.' AS recommended_action,
           'CR 10176: always-therapy codes need GP/GO/GN (billing-rules.md §4.1)' AS reference
    FROM lines WHERE always_therapy AND therapy_modifiers_required AND len(therapy_mods) = 0

    UNION ALL
    SELECT 'MOD-002', 'error', *, 'one of GP, GO, GN', array_to_string(therapy_mods, ' + '),
           procedure_code || ' carries ' || array_to_string(therapy_mods, ' and ')
               || ': a line may carry only one therapy modifier.',
           'Keep the modifier of the discipline that furnished the service; bill services of another discipline '
               || 'on their own line.',
           'CR 10176: more than one therapy modifier on a line (billing-rules.md §4.1)'
    FROM lines WHERE len(therapy_mods) > 1

    UNION ALL
    SELECT 'MOD-003', 'error', *, discipline_modifier, therapy_mods[1],
           procedure_code || ' is a discipline-specific code that takes ' || discipline_modifier || ', but the line '
               || 'carries ' || therapy_mods[1] || '.',
           'Replace ' || therapy_mods[1] || ' with ' || discipline_modifier || ' (or correct the code if another '
               || 'discipline furnished the service).',
           'CR 10176 discipline-specific codes (billing-rules.md §4.1)'
    FROM lines
    WHERE discipline_modifier IS NOT NULL AND len(therapy_mods) = 1
      AND therapy_mods[1] <> discipline_modifier

    UNION ALL
    SELECT 'MOD-004', 'error', *,
           CASE WHEN list_contains(modifiers, 'CQ') THEN 'CQ with GP' ELSE 'CO with GO' END,
           array_to_string(mods_in(modifiers, ['CQ', 'CO', 'GP', 'GO', 'GN']), ' + '),
           CASE WHEN list_contains(modifiers, 'CQ') AND NOT list_contains(modifiers, 'GP')
                THEN 'CQ (PT assistant) must be reported with GP, and this line has '
                     || coalesce(nullif(array_to_string(therapy_mods, '/'), ''), 'no therapy modifier') || '.'
                ELSE 'CO (OT assistant) must be reported with GO, and this line has '
                     || coalesce(nullif(array_to_string(therapy_mods, '/'), ''), 'no therapy modifier') || '.' END,
           CASE WHEN list_contains(modifiers, 'CQ') AND NOT list_contains(modifiers, 'GP')
                THEN 'If a PT assistant furnished the service under a PT plan of care, report GP with CQ; for an OT '
                     || 'assistant use GO with CO.'
                ELSE 'If an OT assistant furnished the service under an OT plan of care, report GO with CO; for a PT '
                     || 'assistant use GP with CQ.' END,
           'CQ/CO pairing (billing-rules.md §4.2)'
    FROM lines
    WHERE (list_contains(modifiers, 'CQ') AND NOT list_contains(modifiers, 'GP'))
       OR (list_contains(modifiers, 'CO') AND NOT list_contains(modifiers, 'GO'))

    UNION ALL
    SELECT 'MOD-008', 'warning', *, '59 or one X{EPSU} modifier', '59 + ' || array_to_string(x_mods, ' + '),
           procedure_code || ' carries both 59 and ' || array_to_string(x_mods, '/') || '; many payers reject '
               || 'the two together.',
           'Keep the X modifier that fits (XE separate encounter, XS separate structure, XP separate practitioner, '
               || 'XU unusual non-overlapping service) and drop 59.',
           '59 vs X{EPSU} (MLN1783722; billing-rules.md §1.5)'
    FROM lines WHERE list_contains(modifiers, '59') AND len(x_mods) > 0

    UNION ALL
    SELECT 'MOD-005', 'error', * EXCLUDE (assistant_modifier),
           therapy_mods[1] || ' with ' || assistant_modifier || ' (' || CASE assistant_modifier WHEN 'CQ'
               THEN 'PT' ELSE 'OT' END || ' assistant furnished more than 10%)',
           'no ' || assistant_modifier || '; assistant minutes ' || assistant_minutes
               || CASE WHEN code_class = 'timed_15' THEN ' (2 or more of a 15-minute unit)'
                       ELSE ' of ' || minutes || ' minutes' END,
           procedure_code || ' was furnished in part by a ' || CASE assistant_modifier WHEN 'CQ' THEN 'PT' ELSE 'OT'
               END || ' assistant (' || assistant_minutes || ' minutes on their own, more than 10% of '
               || CASE WHEN code_class = 'timed_15' THEN 'a 15-minute unit' ELSE 'the service' END
               || ') and the line carries no ' || assistant_modifier || CASE WHEN date_of_service >= DATE '2022-01-01'
               THEN ': Medicare pays such services at 85%, so the 15% difference will be recouped on review.'
               ELSE '.' END,
           'Add ' || assistant_modifier || ' next to ' || therapy_mods[1] || ' (or correct the assistant minutes if '
               || 'the assistant did not furnish more than 10% of the service).',
           'CQ/CO de minimis (Pub 100-04 Ch.5 §20.1; billing-rules.md §4.2)'
    FROM (SELECT *, CASE therapy_mods[1] WHEN 'GP' THEN 'CQ' ELSE 'CO' END AS assistant_modifier FROM lines)
    WHERE list_contains(enabled_rules, 'MOD-005') AND date_of_service >= DATE '2020-01-01'
      AND len(therapy_mods) = 1 AND therapy_mods[1] IN ('GP', 'GO')
      AND assistant_minutes IS NOT NULL
      AND CASE WHEN code_class = 'timed_15' THEN assistant_minutes >= 2
               ELSE minutes IS NOT NULL AND assistant_minutes * 10 > minutes END
      AND NOT list_contains(modifiers, assistant_modifier)

    UNION ALL
    SELECT 'MOD-007', 'error', *, 'AT (active/corrective treatment), or GA/GZ for maintenance care',
           'no AT, GA or GZ',
           procedure_code || ' (chiropractic manipulative treatment) carries no AT: Medicare treats it as maintenance '
               || 'therapy, which it does not cover.',
           'If the treatment is active/corrective and documented so, add AT; for maintenance care add GA (an ABN '
               || 'is on file) or GZ (no ABN).',
           'Medicare chiropractic AT modifier (billing-rules.md §4.4; NGS S53)'
    FROM lines
    WHERE list_contains(enabled_rules, 'MOD-007') AND procedure_code IN ('98940', '98941', '98942')
      AND NOT list_has_any(modifiers, ['AT', 'GA', 'GZ'])

    UNION ALL
    SELECT 'MOD-009', 'error', *, 'G0283', '97014',
           'Medicare does not recognize 97014 (unattended electrical stimulation): the line will be rejected.',
           'Rebill the service as G0283 with the same therapy modifier and units.',
           'Medicare code substitution 97014 -> G0283 (billing-rules.md §3.3)'
    FROM lines
    WHERE list_contains(enabled_rules, 'MOD-009') AND procedure_code = '97014'
)
SELECT rule_id, 'modifiers' AS family, CASE rule_id WHEN 'MOD-008' THEN 'warning' ELSE 'error' END AS severity,
       claim_id, line_number, patient_id, rendering_npi, date_of_service, procedure_code,
       NULL AS related_code, [line_ref] AS related_lines, expected, actual, message, recommended_action,
       CASE WHEN rule_id <> 'MOD-005' THEN line_amount
            WHEN date_of_service >= DATE '2022-01-01' THEN round(line_amount * 0.15, 2)
            ELSE 0 END AS amount_at_risk,
       CASE rule_id WHEN 'MOD-008' THEN 'CO-4 (payer-specific)' WHEN 'MOD-005' THEN carc_assistant
                    WHEN 'MOD-007' THEN carc_chiropractic WHEN 'MOD-009' THEN carc_invalid_code
                    ELSE carc_modifiers END AS predicted_carc,
       reference
FROM checks
