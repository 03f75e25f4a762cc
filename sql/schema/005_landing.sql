-- Incremental audits of a landing folder (claimaudit.landing, docs/scheduling.md).
--   landing_files : every file seen in a scope's landing folder, by content hash; a re-sent identical
--                   file is skipped. status: applied (its lines are in the ledger) | audited.
--   ledger_lines  : the current lines of a scope: the newest file's version of each claim_id.
--                   run_id = the run that loaded the line.
--   pending_days  : days (patient + rendering NPI + DOS) whose lines changed and are not yet audited
--                   by a completed run. A run killed part-way leaves them for the next run.
CREATE TABLE IF NOT EXISTS landing_files (
    scope_key        VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    bytes            BIGINT NOT NULL,
    run_id           VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,
    lines_loaded     BIGINT,
    claims_replaced  BIGINT,
    seen_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (scope_key, sha256)
);

CREATE TABLE IF NOT EXISTS ledger_lines AS
SELECT ''::VARCHAR AS scope_key, * FROM claim_lines LIMIT 0;

CREATE TABLE IF NOT EXISTS pending_days (
    scope_key        VARCHAR NOT NULL,
    patient_id       VARCHAR NOT NULL,
    rendering_npi    VARCHAR NOT NULL,
    date_of_service  DATE NOT NULL,
    since_run        VARCHAR NOT NULL
);

ALTER TABLE runs ADD COLUMN IF NOT EXISTS landing JSON;   -- incremental runs: files, replacements, days
