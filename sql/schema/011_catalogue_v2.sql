-- Rule catalogue v2 (issue 15): KX thresholds and the beneficiary's prior year-to-date therapy amounts,
-- the CMS therapy code list, and what rules could not check line by line.
--   therapy_ytd     : the prior year-to-date therapy amounts a run was given (--therapy-ytd), per bucket
--   unchecked_lines : lines a rule could not judge (sql/rules/_unchecked.sql): scope = a family or a rule id
--   ref_therapy_codes : an imported CMS annual therapy code list ("always" / "sometimes" therapy)
--   ref_thresholds  : imported KX / targeted-review thresholds by year (the bundled ones are a CSV)
CREATE TABLE IF NOT EXISTS therapy_ytd (
    run_id       VARCHAR NOT NULL,
    patient_id   VARCHAR NOT NULL,
    year         INTEGER NOT NULL,
    bucket       VARCHAR NOT NULL,            -- PT+SLP | OT
    amount       DECIMAL(12,2) NOT NULL,
    source_line  BIGINT
);
CREATE TABLE IF NOT EXISTS unchecked_lines (
    run_id          VARCHAR NOT NULL,
    scope           VARCHAR NOT NULL,
    reason          VARCHAR NOT NULL,
    claim_id        VARCHAR,
    line_number     INTEGER,
    patient_id      VARCHAR,
    rendering_npi   VARCHAR,
    date_of_service DATE
);
CREATE TABLE IF NOT EXISTS ref_therapy_codes (
    file_id         INTEGER NOT NULL,
    procedure_code  VARCHAR NOT NULL,
    designation     VARCHAR NOT NULL,          -- always | sometimes
    source_line     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ref_thresholds (
    file_id      INTEGER NOT NULL,
    year         INTEGER NOT NULL,
    kx_pt_slp    DECIMAL(12,2) NOT NULL,
    kx_ot        DECIMAL(12,2) NOT NULL,
    tmr          DECIMAL(12,2) NOT NULL,
    source       VARCHAR,
    source_line  INTEGER NOT NULL
);
