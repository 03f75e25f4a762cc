-- Ingest in DuckDB (claimaudit.ingest): each input file is first loaded as text into a raw table
-- ingest_raw_<run>_<k> (columns c1..cN by position), kept until the data-quality step has run so a
-- line it quarantines keeps its original fields, then dropped.
--   ingest_gaps : rows of a file that are no record of the raw table: records the parser could not
--                 split (is_record, with their raw text and reason) and blank lines (not records, but
--                 rows a spreadsheet counts). Source rows are computed from them (readers.raw_rows_sql).
CREATE TABLE IF NOT EXISTS ingest_gaps (
    run_id      VARCHAR NOT NULL,
    file_index  INTEGER NOT NULL,
    line        BIGINT NOT NULL,
    raw_record  VARCHAR,
    reason      VARCHAR,
    is_record   BOOLEAN NOT NULL
);
-- per input file: its position in the run, its raw table, where its records start, and every column
-- of its header with what it feeds (or that the mapping ignores it / nothing loads it, with the number
-- of non-empty values)
ALTER TABLE run_inputs ADD COLUMN IF NOT EXISTS file_index INTEGER;
ALTER TABLE run_inputs ADD COLUMN IF NOT EXISTS raw_table VARCHAR;
ALTER TABLE run_inputs ADD COLUMN IF NOT EXISTS first_row BIGINT;
ALTER TABLE run_inputs ADD COLUMN IF NOT EXISTS has_src_row BOOLEAN;
ALTER TABLE run_inputs ADD COLUMN IF NOT EXISTS columns JSON;
-- columns of the inputs that no mapping key loads (allowed with --allow-unmapped-columns) or that the
-- mapping declares ignored, with their non-empty value counts: [{source_file, position, name, ...}]
ALTER TABLE runs ADD COLUMN IF NOT EXISTS columns_not_loaded JSON;
