-- Where each run's lines got their rule profile (issue 17): JSON {"file": n, "payer_map": n, "run_default": n}
-- counted over the rows read, so a --profile that no row took is visible in the summary and printout.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS profile_sources VARCHAR;
