-- claimaudit warehouse, migration 001: runs, claim lines, quarantine, findings, reference data.
-- One DuckDB file holds everything; every row written by an audit carries its run_id.

CREATE TABLE IF NOT EXISTS runs (
    run_id              VARCHAR PRIMARY KEY,
    started_at          TIMESTAMP NOT NULL,
    finished_at         TIMESTAMP,
    status              VARCHAR NOT NULL,          -- running | completed | failed
    profile_default     VARCHAR NOT NULL,
    mapping             VARCHAR,
    code_version        VARCHAR NOT NULL,
    reference_versions  JSON,                      -- [{kind, version, parts, starter}, ...]
    starter_reference   BOOLEAN,
    rows_read           BIGINT,
    rows_loaded         BIGINT,
    rows_quarantined    BIGINT,
    findings            BIGINT,
    timings             JSON,                      -- {step: seconds}
    out_dir             VARCHAR
);

CREATE TABLE IF NOT EXISTS run_inputs (
    run_id           VARCHAR NOT NULL,
    source_file      VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    sha256           VARCHAR NOT NULL,
    bytes            BIGINT NOT NULL,
    file_format      VARCHAR NOT NULL,
    rows_read        BIGINT NOT NULL,
    rows_loaded      BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS claim_lines (
    run_id              VARCHAR NOT NULL,
    claim_id            VARCHAR NOT NULL,
    line_number         INTEGER NOT NULL,
    patient_id          VARCHAR NOT NULL,
    rendering_npi       VARCHAR(10) NOT NULL,
    billing_npi         VARCHAR(10),
    payer               VARCHAR,
    profile             VARCHAR NOT NULL,
    date_of_service     DATE NOT NULL,
    procedure_code      VARCHAR(5) NOT NULL,
    modifiers           VARCHAR[] NOT NULL,
    units               DECIMAL(9,2) NOT NULL,
    minutes             INTEGER,
    charge_amount       DECIMAL(12,2),
    allowed_amount      DECIMAL(12,2),
    place_of_service    VARCHAR(2),
    diagnosis_codes     VARCHAR[],
    provider_discipline VARCHAR,
    assistant_minutes   INTEGER,
    source_file         VARCHAR NOT NULL,
    source_row          BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS quarantine (
    run_id       VARCHAR NOT NULL,
    source_file  VARCHAR NOT NULL,
    source_line  BIGINT NOT NULL,
    reason       VARCHAR NOT NULL,
    record       JSON                                -- the original fields, as read
);

CREATE TABLE IF NOT EXISTS findings (
    run_id             VARCHAR NOT NULL,
    rule_id            VARCHAR NOT NULL,
    family             VARCHAR NOT NULL,
    severity           VARCHAR NOT NULL,
    claim_id           VARCHAR,
    line_number        INTEGER,
    patient_id         VARCHAR,
    rendering_npi      VARCHAR,
    date_of_service    DATE,
    procedure_code     VARCHAR,
    related_code       VARCHAR,
    related_lines      VARCHAR[],
    expected           VARCHAR,
    actual             VARCHAR,
    message            VARCHAR NOT NULL,
    recommended_action VARCHAR,
    amount_at_risk     DECIMAL(12,2),
    predicted_carc     VARCHAR,
    reference          VARCHAR
);

-- One row per imported reference file (a PTP part file, or an MUE file).
CREATE TABLE IF NOT EXISTS ref_files (
    file_id          INTEGER PRIMARY KEY,
    kind             VARCHAR NOT NULL,            -- ptp | mue
    setting          VARCHAR NOT NULL,            -- practitioner
    version          VARCHAR NOT NULL,            -- PTP: v322r0; MUE: 2026-07-01; starter: starter-...
    part             VARCHAR,                     -- PTP part: f1..f4
    coverage_start   DATE,                        -- first DOS this version is meant for
    coverage_end     DATE,                        -- PTP: last day of the release quarter; MUE: NULL (until the next version)
    is_starter       BOOLEAN NOT NULL,
    source_name      VARCHAR NOT NULL,            -- file name (inside the zip, when zipped)
    sha256           VARCHAR NOT NULL UNIQUE,
    rows_loaded      BIGINT NOT NULL,
    rows_bad         BIGINT NOT NULL,
    bad_rows         JSON,                        -- [{line, reason}]
    imported_at      TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS ref_ptp (
    file_id             INTEGER NOT NULL,
    column_1            VARCHAR NOT NULL,
    column_2            VARCHAR NOT NULL,
    prior_1996          BOOLEAN NOT NULL,
    effective_date      DATE NOT NULL,
    deletion_date       DATE,                     -- NULL = '*' (not deleted); otherwise the LAST day in force
    modifier_indicator  TINYINT NOT NULL,         -- 0 not allowed, 1 allowed, 9 not applicable
    rationale           VARCHAR,
    source_line         INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ref_mue (
    file_id                     INTEGER NOT NULL,
    procedure_code              VARCHAR NOT NULL,
    mue_value                   INTEGER NOT NULL,
    mue_adjudication_indicator  TINYINT NOT NULL, -- 1 line, 2 DOS policy, 3 DOS clinical
    mue_adjudication_text       VARCHAR NOT NULL,
    rationale                   VARCHAR,
    source_line                 INTEGER NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS ref_file_ids START 1;
