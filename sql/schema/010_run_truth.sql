-- Runs and history that tell the truth (docs/reports.md, "History").
--   families_skipped       : rule families this run did not run at all (e.g. ["data_quality"] with
--                            --no-data-quality); history neither resolves nor reports new findings of them
--   findings_not_compared  : findings of this or the previous run whose family the other run did not check
--   failure                : why a run that did not complete stopped (failed / abandoned), one line
ALTER TABLE runs ADD COLUMN IF NOT EXISTS families_skipped JSON;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS findings_not_compared BIGINT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS failure VARCHAR;
