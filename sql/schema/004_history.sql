-- Findings across runs: a stable fingerprint (rule + claim + line + related code, not the run id),
-- each finding's status against the previous run of the same scope, and the run's scope.
ALTER TABLE findings ADD COLUMN IF NOT EXISTS fingerprint VARCHAR;
ALTER TABLE findings ADD COLUMN IF NOT EXISTS status VARCHAR;          -- new | recurring
ALTER TABLE runs ADD COLUMN IF NOT EXISTS scope_key VARCHAR;           -- see docs/history.md
ALTER TABLE runs ADD COLUMN IF NOT EXISTS previous_run_id VARCHAR;     -- the run this one is compared with
ALTER TABLE runs ADD COLUMN IF NOT EXISTS findings_new BIGINT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS findings_recurring BIGINT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS findings_resolved BIGINT;
