-- Inputs shared by every rule file (run by claimaudit.rules.runner before the rules).
--   audit_lines  : this run's claim lines, with line_ref ('claim:line') and line_amount
--                  (allowed amount if known, else charge) for dollars at risk
--   dos_versions : for each date of service, the PTP and MUE reference version the rules use (NULL = none
--                  in force, or the one in force is incomplete) and why it is unchecked
-- getvariable('run_id') is set by the runner.

-- mods_in(m, wanted): the elements of wanted that the list m holds, in wanted's order; for a wanted list
-- without duplicates exactly list_intersect(m, wanted), without a hash set per row (~10x faster).
CREATE OR REPLACE TEMP MACRO mods_in(m, wanted) AS
    CASE WHEN m IS NOT NULL THEN list_filter(wanted, lambda x: list_contains(m, x)) END;

CREATE OR REPLACE TEMP VIEW audit_lines AS
SELECT l.*,
       l.claim_id || ':' || l.line_number AS line_ref,
       coalesce(l.allowed_amount, l.charge_amount) AS line_amount
FROM claim_lines l
WHERE l.run_id = getvariable('run_id');

CREATE OR REPLACE TEMP TABLE dos_versions AS
WITH days AS (SELECT DISTINCT date_of_service FROM audit_lines),
in_force AS (
    SELECT d.date_of_service,
           -- PTP: the release with the earliest quarter end on or after the DOS (starter: open-ended)
           (SELECT arg_min(v.version, coalesce(v.coverage_end, DATE '9999-12-31'))
              FROM ref_versions v
             WHERE v.kind = 'ptp' AND coalesce(v.coverage_end, DATE '9999-12-31') >= d.date_of_service) AS ptp_release,
           -- MUE: the file whose effective period contains the DOS
           (SELECT arg_max(v.version, v.coverage_start)
              FROM ref_versions v
             WHERE v.kind = 'mue' AND v.coverage_start <= d.date_of_service
               AND coalesce(v.coverage_end, DATE '9999-12-31') >= d.date_of_service) AS mue_release
    FROM days d
)
-- ptp_version / mue_version: the version the rules use, NULL when none is in force or the one in force
-- is incomplete; ptp_unchecked / mue_unchecked: why (REF-001 says it on every line of that date)
SELECT f.date_of_service, f.ptp_release, f.mue_release,
       CASE WHEN p.incomplete_reason IS NULL THEN f.ptp_release END AS ptp_version,
       CASE WHEN m.incomplete_reason IS NULL THEN f.mue_release END AS mue_version,
       CASE WHEN f.ptp_release IS NULL THEN 'no NCCI PTP release loaded covers the date'
            ELSE p.incomplete_reason END AS ptp_unchecked,
       CASE WHEN f.mue_release IS NULL THEN 'no MUE file loaded is in force on the date'
            ELSE m.incomplete_reason END AS mue_unchecked
FROM in_force f
LEFT JOIN ref_versions p ON p.kind = 'ptp' AND p.version = f.ptp_release
LEFT JOIN ref_versions m ON m.kind = 'mue' AND m.version = f.mue_release;

-- PTP edit rows of the releases in force for this run's dates, for codes billed in this run.
-- Indicator-9 rows never fire (billing-rules.md §1.2) and are left out here.
CREATE OR REPLACE TEMP TABLE ptp_edits AS
SELECT f.version, f.source_name, p.*
FROM ref_ptp p
JOIN ref_files f USING (file_id)
WHERE f.kind = 'ptp'
  AND f.version IN (SELECT ptp_version FROM dos_versions WHERE ptp_version IS NOT NULL)
  AND p.modifier_indicator <> 9
  AND p.column_1 IN (SELECT DISTINCT procedure_code FROM audit_lines)
  AND p.column_2 IN (SELECT DISTINCT procedure_code FROM audit_lines);

-- MUE rows of the files in force for this run's dates (one row per version and code).
CREATE OR REPLACE TEMP TABLE mue_edits AS
SELECT f.version, f.source_name, m.*
FROM ref_mue m
JOIN ref_files f USING (file_id)
WHERE f.kind = 'mue'
  AND f.version IN (SELECT mue_version FROM dos_versions WHERE mue_version IS NOT NULL)
  AND m.procedure_code IN (SELECT DISTINCT procedure_code FROM audit_lines)
QUALIFY row_number() OVER (PARTITION BY f.version, m.procedure_code ORDER BY m.mue_value, m.source_line) = 1;

-- The lines the KX running totals (kx_threshold.sql) accumulate: this run's lines, and in a landing
-- run also the scope's ledger lines of the same beneficiary-years that this run does not audit (the
-- earlier days), so an incremental run totals like a full one.
-- (landing_run is a constant when a rule binds, so in any other run the ledger branch, with its look-up
-- of every line of the run, is planned away.)
SET VARIABLE landing_run = (SELECT landing IS NOT NULL FROM runs WHERE run_id = getvariable('run_id'));
CREATE OR REPLACE TEMP VIEW kx_lines AS
SELECT * FROM audit_lines
UNION ALL BY NAME
SELECT g.* EXCLUDE (scope_key, run_id),
       g.claim_id || ':' || g.line_number AS line_ref,
       coalesce(g.allowed_amount, g.charge_amount) AS line_amount
FROM ledger_lines g
WHERE getvariable('landing_run')
  AND g.scope_key = (SELECT scope_key FROM runs WHERE run_id = getvariable('run_id') AND landing IS NOT NULL)
  AND (g.patient_id, year(g.date_of_service)) IN (SELECT (patient_id, year(date_of_service)) FROM audit_lines)
  AND (g.claim_id, g.line_number) NOT IN (SELECT (claim_id, line_number) FROM audit_lines);

-- The beneficiaries' prior year-to-date therapy amounts in force: this run's (--therapy-ytd), else in a
-- landing run the latest ones given to a run of the same scope.
CREATE OR REPLACE TEMP TABLE therapy_ytd_in_force AS
WITH source_run AS (
    SELECT coalesce(
        (SELECT getvariable('run_id') WHERE EXISTS (SELECT 1 FROM therapy_ytd WHERE run_id = getvariable('run_id'))),
        (SELECT r.run_id FROM runs r JOIN runs me ON me.run_id = getvariable('run_id')
         WHERE me.landing IS NOT NULL AND r.scope_key = me.scope_key AND r.run_id <> me.run_id
           AND EXISTS (SELECT 1 FROM therapy_ytd y WHERE y.run_id = r.run_id)
         ORDER BY r.started_at DESC LIMIT 1)) AS run_id
)
SELECT patient_id, year, bucket, amount FROM therapy_ytd WHERE run_id = (SELECT run_id FROM source_run);
