-- Data-quality results (Great Expectations suite in expectations/claim_lines.json), per run.
CREATE TABLE IF NOT EXISTS dq_results (
    run_id             VARCHAR NOT NULL,
    expectation_id     VARCHAR NOT NULL,     -- meta.id in the suite, e.g. DQ-NPI-CHECK-DIGIT
    level              VARCHAR NOT NULL,     -- blocking | warning
    expectation_type   VARCHAR NOT NULL,
    description        VARCHAR,
    action             VARCHAR,
    success            BOOLEAN NOT NULL,
    unexpected_count   BIGINT NOT NULL,
    unexpected_percent DOUBLE,
    examples           JSON,                 -- up to 20 example rows (identifiers and the failing value)
    rows_acted_on      BIGINT NOT NULL       -- rows quarantined (blocking) or flagged (warning)
);

-- The lines each failed expectation names (blocking: quarantined; warning: DQ-* findings).
CREATE TABLE IF NOT EXISTS dq_hits (
    run_id          VARCHAR NOT NULL,
    expectation_id  VARCHAR NOT NULL,
    level           VARCHAR NOT NULL,
    claim_id        VARCHAR NOT NULL,
    line_number     INTEGER NOT NULL
);
