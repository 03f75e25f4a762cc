-- TIME-001..TIME-007: units vs documented minutes of timed therapy codes.
-- Sources: CMS Pub 100-04 Ch.5 §20.2 (8-minute rule), CPT time rule (billing-rules.md §3, §7).
-- Day = patient + rendering NPI + DOS across all claims (and the line's profile). Code classes come
-- from data/reference/code_classes.csv: only 'timed_15' codes are in the pool; untimed minutes never count.
--
--  TIME-007 warning line     a timed line without minutes: the day's time checks are skipped (unchecked)
--  cms_total days (all minutes documented):  T = day's timed minutes, N = 0 if T < 8 else floor((T+7)/15)
--    TIME-003 error   line     T < 8 and timed units billed (every billed timed line; never also TIME-001)
--    TIME-001 error   day      billed > N; the action names the §20.2 bill
--    TIME-006 info    day      billed < N (possible under-billing)
--    TIME-002 warning line     billed = N but the split contradicts §20.2: a code got units outside
--                              [floor(m/15), floor(m/15)+1], or got one of the R units left after the
--                              floors although R codes have more leftover minutes or a code that got
--                              none has more (billing-rules.md §3.1; ties: either way)
--  cpt_per_code days:
--    TIME-004 error   line     a code's units exceed floor((m+7)/15) (0 below 8 minutes), m = its minutes that day
--  any profile:
--    TIME-005 error   day+code an untimed per-session code billed with more than 1 unit that day
-- Day- and code-level findings sit on the group's first line (claim_id, line_number order).
-- Two phases, for speed: numeric sums for every code of a day first (one grouping over the timed
-- lines), and for every day from its codes (one grouping; it also finds the days whose §20.2 split is
-- wrong, without a window); then only the days and codes that produce a finding get the §20.2 window
-- (by a numeric day_id, not the four key columns), their lines, first line, line list and bill text.
-- Inputs: audit_lines, code_classes, profiles.
WITH classed AS NOT MATERIALIZED (
    SELECT l.*, coalesce(c.code_class, 'other') AS code_class, p.time_method, p.carc_units_time
    FROM audit_lines l
    LEFT JOIN code_classes c USING (procedure_code)
    JOIN profiles p ON p.profile = l.profile
), timed AS NOT MATERIALIZED (
    SELECT * FROM classed WHERE code_class = 'timed_15'
), codes AS (            -- phase 1: sums per day and code (one pass over the timed lines)
    SELECT patient_id, rendering_npi, date_of_service, profile, procedure_code,
           bool_or(minutes IS NULL) AS unchecked,
           sum(minutes) AS minutes, sum(units) AS units, sum(minutes) // 15 AS base,
           sum(minutes) % 15 AS leftover, sum(line_amount) AS amount, sum(line_amount) / sum(units) AS unit_amount
    FROM timed
    GROUP BY patient_id, rendering_npi, date_of_service, profile, procedure_code
), days AS (             -- phase 1: sums per day, from its codes; day_id: a short key for the window below
    SELECT patient_id, rendering_npi, date_of_service, profile,
           bool_or(unchecked) AS unchecked,
           sum(minutes) AS total_minutes, sum(units) AS billed, sum(amount) / sum(units) AS unit_amount,
           -- §20.2 split, day level: a code outside [floor, floor + 1], or a +1 for a smaller leftover
           -- than a code at its floor has (with every code in range and the total right, that is exactly
           -- a day where some code's units contradict §20.2: t002 below says which)
           bool_or(units < base OR units > base + 1) AS off_range,
           min(leftover) FILTER (WHERE units = base + 1) AS min_leftover_with_one,
           max(leftover) FILTER (WHERE units = base) AS max_leftover_at_floor,
           row_number() OVER () AS day_id
    FROM codes
    GROUP BY patient_id, rendering_npi, date_of_service, profile
), checked_days AS (
    SELECT d.*, p.time_method, p.carc_units_time AS carc,
           CASE WHEN total_minutes < 8 THEN 0 ELSE (total_minutes + 7) // 15 END AS allowed
    FROM days d JOIN profiles p USING (profile)
    WHERE NOT unchecked
), flagged_days AS (     -- days with a day-level finding (TIME-001, TIME-003, TIME-006) or a TIME-002 code
    SELECT * FROM checked_days
    WHERE time_method = 'cms_total'
      AND (total_minutes < 8 OR billed <> allowed OR off_range OR min_leftover_with_one < max_leftover_at_floor)
), allocation AS (       -- the §20.2 bill of those days: floors, then the remaining units to the largest leftovers
    SELECT c.*, d.day_id, d.allowed, d.billed, d.total_minutes,
           d.carc AS d_carc,
           c.base + CASE WHEN row_number() OVER day_by_leftover <= d.allowed - sum(c.base) OVER day THEN 1 ELSE 0 END
               AS cms_units,
           -- R = units left after the floors; a code is entitled to one of them only if fewer than R
           -- codes of the day have strictly more leftover minutes (ties may go either way)
           d.allowed - sum(c.base) OVER day AS remaining,
           rank() OVER (day ORDER BY c.leftover DESC) - 1 AS codes_with_more_leftover,
           -- the largest leftover of the day's codes that got no +1 (none above their floor)
           max(c.leftover) FILTER (WHERE c.units <= c.base) OVER day AS max_leftover_without_one
    FROM codes c
    JOIN flagged_days d USING (patient_id, rendering_npi, date_of_service, profile)
    WHERE d.total_minutes >= 8
    WINDOW day AS (PARTITION BY d.day_id),
           day_by_leftover AS (day ORDER BY c.leftover DESC, c.procedure_code)
), t002 AS (             -- right total, split contradicts §20.2
    SELECT * FROM allocation
    WHERE billed = allowed
      AND (units < base OR units > base + 1
           OR (units = base + 1 AND (codes_with_more_leftover >= remaining OR leftover < max_leftover_without_one)))
), t004 AS (             -- CPT per-code rule
    SELECT c.*, d.day_id, d.carc,
           CASE WHEN c.minutes < 8 THEN 0 ELSE (c.minutes + 7) // 15 END AS cpt_units
    FROM codes c
    JOIN checked_days d USING (patient_id, rendering_npi, date_of_service, profile)
    WHERE d.time_method = 'cpt_per_code' AND c.units > CASE WHEN c.minutes < 8 THEN 0 ELSE (c.minutes + 7) // 15 END
), flagged_codes AS (    -- codes with a code-level finding (TIME-002, TIME-004)
    SELECT day_id, procedure_code FROM t002
    UNION ALL SELECT day_id, procedure_code FROM t004
), flagged_lines AS MATERIALIZED (   -- phase 2: the lines of those days and codes, in one pass, with their day_id
    SELECT f.day_id, f.day_level, t.claim_id, t.line_number, t.procedure_code, t.units, t.line_amount, t.line_ref
    FROM timed t
    JOIN (SELECT patient_id, rendering_npi, date_of_service, profile, day_id, true AS day_level FROM flagged_days
          UNION ALL
          SELECT DISTINCT patient_id, rendering_npi, date_of_service, profile, day_id, false FROM t004) f
      USING (patient_id, rendering_npi, date_of_service, profile)
), day_lines AS (        -- phase 2: per flagged day, its first line and all its lines
    SELECT day_id,
           arg_min(claim_id, (claim_id, line_number)) AS claim_id,
           arg_min(line_number, (claim_id, line_number)) AS line_number,
           arg_min(procedure_code, (claim_id, line_number)) AS procedure_code,
           list(line_ref ORDER BY claim_id, line_number) AS related_lines
    FROM flagged_lines
    WHERE day_level
    GROUP BY day_id
), cms_bill AS (         -- phase 2: the §20.2 bill text of the flagged days (allocation holds no other)
    SELECT day_id,
           string_agg(procedure_code || ' x' || cms_units::INTEGER || ' (' || minutes || ' min)', ', '
                      ORDER BY cms_units DESC, procedure_code) FILTER (WHERE cms_units > 0) AS bill
    FROM allocation
    GROUP BY day_id
), code_lines AS (       -- phase 2: per flagged code, its first line and all its lines
    SELECT t.day_id, t.procedure_code,
           arg_min(t.claim_id, (t.claim_id, t.line_number)) AS claim_id,
           arg_min(t.line_number, (t.claim_id, t.line_number)) AS line_number,
           list(t.line_ref ORDER BY t.claim_id, t.line_number) AS related_lines
    FROM flagged_lines t
    SEMI JOIN flagged_codes k USING (day_id, procedure_code)
    GROUP BY t.day_id, t.procedure_code
), time_findings AS (
    -- TIME-007: timed line without minutes
    SELECT 'TIME-007' AS rule_id, 'warning' AS severity, t.claim_id, t.line_number, t.patient_id, t.rendering_npi,
           t.date_of_service, t.procedure_code, [t.line_ref] AS related_lines,
           'documented minutes for ' || t.procedure_code AS expected, 'no minutes on the line' AS actual,
           t.procedure_code || ' is a timed code billed without documented minutes, so the units of this day '
               || 'could not be checked (unchecked, not passed).' AS message,
           'Add the treatment minutes for ' || t.procedure_code || ' to the extract (or the claim notes) and re-run '
               || 'the audit.' AS recommended_action,
           NULL::DECIMAL(12,2) AS amount_at_risk, 'n/a (unchecked)' AS predicted_carc,
           'timed codes need minutes (Pub 100-04 Ch.5 §20.2)' AS reference
    FROM timed t WHERE t.minutes IS NULL

    UNION ALL  -- TIME-003: fewer than 8 timed minutes in the day, units billed (CMS)
    SELECT 'TIME-003', 'error', t.claim_id, t.line_number, d.patient_id, d.rendering_npi, d.date_of_service,
           t.procedure_code, l.related_lines,
           '0 timed units (' || d.total_minutes || ' timed minutes that day)',
           t.units::INTEGER || ' unit(s) of ' || t.procedure_code,
           'The day has only ' || d.total_minutes || ' timed minutes in all; under the 8-minute rule fewer than 8 '
               || 'minutes earn no unit, so ' || t.procedure_code || ' will be denied.',
           'Remove ' || t.procedure_code || ' from the claim, or correct the minutes if more were documented.',
           t.line_amount, d.carc, 'CMS 8-minute rule (Pub 100-04 Ch.5 §20.2): under 8 minutes, no unit'
    FROM flagged_lines t
    JOIN flagged_days d USING (day_id)
    JOIN day_lines l USING (day_id)
    WHERE d.total_minutes < 8

    UNION ALL  -- TIME-001: more units than the day's minutes support (CMS)
    SELECT 'TIME-001', 'error', l.claim_id, l.line_number, d.patient_id, d.rendering_npi, d.date_of_service,
           l.procedure_code, l.related_lines,
           d.allowed || ' timed units (' || d.total_minutes || ' minutes)',
           d.billed::INTEGER || ' timed units',
           d.billed::INTEGER || ' timed units are billed for ' || d.total_minutes || ' timed minutes; the 8-minute '
               || 'rule allows ' || d.allowed || ', so ' || (d.billed - d.allowed)::INTEGER || ' unit(s) will be denied.',
           'Bill ' || b.bill || ' (§20.2: full 15-minute units first, the rest to the largest leftover minutes; '
               || 'equal leftovers may go either way).',
           round((d.billed - d.allowed) * d.unit_amount, 2), d.carc,
           'CMS 8-minute rule (Pub 100-04 Ch.5 §20.2): units = floor((T + 7) / 15)'
    FROM flagged_days d
    JOIN day_lines l USING (day_id)
    JOIN cms_bill b USING (day_id)
    WHERE d.total_minutes >= 8 AND d.billed > d.allowed

    UNION ALL  -- TIME-006: fewer units than the minutes support (CMS)
    SELECT 'TIME-006', 'info', l.claim_id, l.line_number, d.patient_id, d.rendering_npi, d.date_of_service,
           l.procedure_code, l.related_lines,
           d.allowed || ' timed units (' || d.total_minutes || ' minutes)', d.billed::INTEGER || ' timed units',
           'Only ' || d.billed::INTEGER || ' timed units are billed for ' || d.total_minutes
               || ' documented timed minutes, which support ' || d.allowed || ': possible under-billing.',
           'Check the minutes and units against the treatment note; if the minutes are right, bill ' || b.bill || '.',
           0, 'none expected (under-billing)', 'CMS 8-minute rule (Pub 100-04 Ch.5 §20.2)'
    FROM flagged_days d
    JOIN day_lines l USING (day_id)
    JOIN cms_bill b USING (day_id)
    WHERE d.total_minutes >= 8 AND d.billed < d.allowed

    UNION ALL  -- TIME-002: right total, split contradicts §20.2 (CMS)
    SELECT 'TIME-002', 'warning', l.claim_id, l.line_number, a.patient_id, a.rendering_npi, a.date_of_service,
           a.procedure_code, l.related_lines,
           a.procedure_code || ' x' || CASE WHEN a.units < a.base THEN a.base ELSE a.base + (a.cms_units > a.base)::INTEGER END
               || ' (' || a.minutes || ' min)',
           a.procedure_code || ' x' || a.units::INTEGER,
           'The day''s total of ' || a.allowed || ' timed units is right, but ' || a.procedure_code || ' ('
               || a.minutes || ' min) is billed with ' || a.units::INTEGER || ' unit(s): §20.2 gives full 15-minute '
               || 'units first and the remaining units to the codes with the most leftover minutes.',
           'Re-split the units as ' || b.bill || '.',
           round(CASE WHEN a.units > a.base + 1 THEN (a.units - a.base - 1) * a.unit_amount
                      WHEN a.units = a.base + 1 THEN a.unit_amount ELSE 0 END, 2),
           a.d_carc, 'CMS Pub 100-04 Ch.5 §20.2 unit allocation'
    FROM t002 a
    JOIN code_lines l USING (day_id, procedure_code)
    JOIN cms_bill b USING (day_id)

    UNION ALL  -- TIME-004: per-code midpoint rule (CPT profile)
    SELECT 'TIME-004', 'error', l.claim_id, l.line_number, c.patient_id, c.rendering_npi, c.date_of_service,
           c.procedure_code, l.related_lines,
           c.cpt_units || ' unit(s) (' || c.minutes || ' min)',
           c.units::INTEGER || ' unit(s)',
           c.procedure_code || ' has ' || c.minutes || ' documented minutes, which earn ' || c.cpt_units
               || ' unit(s) under the CPT per-code rule (a unit needs at least 8 minutes of that code), but '
               || c.units::INTEGER || ' are billed.',
           CASE WHEN c.minutes < 8 THEN 'Remove ' || c.procedure_code || ' (under 8 minutes earns no unit with this payer).'
                ELSE 'Bill ' || c.procedure_code || ' x' || c.cpt_units || '.' END,
           round((c.units - c.cpt_units) * c.unit_amount, 2),
           c.carc, 'CPT time rule, per code (midpoint: 8 minutes for a 15-minute unit)'
    FROM t004 c
    JOIN code_lines l USING (day_id, procedure_code)
), sessions AS (         -- TIME-005 phase 1: untimed per-session codes, more than 1 unit a day
    SELECT patient_id, rendering_npi, date_of_service, procedure_code, sum(units) AS units,
           sum(line_amount) AS amount,
           arg_min(carc_units_time, (claim_id, line_number)) AS carc     -- first line's profile: deterministic
    FROM classed WHERE code_class = 'untimed_session'
    GROUP BY ALL HAVING sum(units) > 1
), session_codes AS (    -- TIME-005 phase 2: their lines
    SELECT 'TIME-005' AS rule_id, 'error' AS severity,
           arg_min(c.claim_id, (c.claim_id, c.line_number)) AS claim_id,
           arg_min(c.line_number, (c.claim_id, c.line_number)) AS line_number,
           s.patient_id, s.rendering_npi, s.date_of_service, s.procedure_code,
           list(c.line_ref ORDER BY c.claim_id, c.line_number) AS related_lines,
           '1 unit per day' AS expected, any_value(s.units)::INTEGER || ' units that day' AS actual,
           s.procedure_code || ' is reported once per session (untimed), but ' || any_value(s.units)::INTEGER
               || ' units are billed for this patient and provider that day.' AS message,
           'Bill ' || s.procedure_code || ' x1 for the day.' AS recommended_action,
           round(any_value(s.amount) * (any_value(s.units) - 1) / any_value(s.units), 2) AS amount_at_risk,
           any_value(s.carc) AS predicted_carc,
           'untimed per-session code (billing-rules.md §3.3; data/reference/code_classes.csv)' AS reference
    FROM sessions s
    JOIN classed c USING (patient_id, rendering_npi, date_of_service, procedure_code)
    WHERE c.code_class = 'untimed_session'
    GROUP BY s.patient_id, s.rendering_npi, s.date_of_service, s.procedure_code
)
SELECT rule_id, 'units_time' AS family, severity, claim_id, line_number, patient_id, rendering_npi,
       date_of_service, procedure_code, NULL AS related_code, related_lines, expected, actual, message,
       recommended_action, amount_at_risk, predicted_carc, reference
FROM (SELECT * FROM time_findings UNION ALL SELECT * FROM session_codes)
