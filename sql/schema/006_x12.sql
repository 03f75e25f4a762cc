-- X12 837P input (claimaudit.x12): the end of a DOS range and the interchange of each line;
-- reader warnings per input file (e.g. an ISA16 that differs from the separator the file uses).
ALTER TABLE claim_lines ADD COLUMN IF NOT EXISTS service_end_date DATE;
ALTER TABLE claim_lines ADD COLUMN IF NOT EXISTS source_interchange VARCHAR;
ALTER TABLE ledger_lines ADD COLUMN IF NOT EXISTS service_end_date DATE;
ALTER TABLE ledger_lines ADD COLUMN IF NOT EXISTS source_interchange VARCHAR;
ALTER TABLE run_inputs ADD COLUMN IF NOT EXISTS warnings JSON;
