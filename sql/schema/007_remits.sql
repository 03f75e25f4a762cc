-- 835 remittances read with an audit (claimaudit.x12.remits835) and their link to claim lines.
CREATE TABLE IF NOT EXISTS remit_claims (
    run_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL, clp_seg BIGINT NOT NULL, st_no BIGINT,
    isa_ctrl VARCHAR, patient_control_number VARCHAR, status VARCHAR, charge DECIMAL(12,2), paid DECIMAL(12,2),
    patient_responsibility DECIMAL(12,2), filing_indicator VARCHAR, payer_claim_id VARCHAR,
    payment_amount VARCHAR, payment_date VARCHAR, trace_number VARCHAR, payer VARCHAR, payee_npi VARCHAR,
    claim_start VARCHAR, claim_end VARCHAR
);
CREATE TABLE IF NOT EXISTS remit_lines (
    run_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL, clp_seg BIGINT NOT NULL, svc_seg BIGINT NOT NULL,
    qualifier VARCHAR, procedure_code VARCHAR, modifiers VARCHAR[], charge DECIMAL(12,2), paid DECIMAL(12,2),
    revenue_code VARCHAR, units DECIMAL(9,2), service_date DATE, service_end_date DATE,
    issue VARCHAR                                   -- e.g. an SVC without a procedure code: kept, never matched on code
);
CREATE TABLE IF NOT EXISTS remit_adjustments (
    run_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL, clp_seg BIGINT, svc_seg BIGINT, seg BIGINT NOT NULL,
    "group" VARCHAR, reason VARCHAR, amount DECIMAL(12,2), quantity DECIMAL(9,2), level VARCHAR
);
CREATE TABLE IF NOT EXISTS remit_remarks (
    run_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL, clp_seg BIGINT, svc_seg BIGINT, seg BIGINT NOT NULL,
    qualifier VARCHAR, code VARCHAR, level VARCHAR
);
CREATE TABLE IF NOT EXISTS remit_plb (
    run_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL, st_no BIGINT, seg BIGINT NOT NULL, provider VARCHAR,
    fiscal_date VARCHAR, reason VARCHAR, reference VARCHAR, amount DECIMAL(12,2)
);
-- remit line -> claim line, with the rule that matched (docs/denials.md)
CREATE TABLE IF NOT EXISTS remit_matches (
    run_id VARCHAR NOT NULL, source_file VARCHAR NOT NULL, svc_seg BIGINT NOT NULL,
    claim_id VARCHAR NOT NULL, line_number INTEGER NOT NULL, match_rule VARCHAR NOT NULL
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS denials JSON;
