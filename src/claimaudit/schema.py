"""The canonical claim-line and findings schemas: one definition, used everywhere.

The DuckDB DDL in ``sql/schema`` mirrors these lists; ``tests/test_schema.py`` checks that they agree.
"""

from __future__ import annotations

import polars as pl

# Canonical claim line (ARCHITECTURE.md). Codes, NPIs, POS and modifiers are strings, never numbers.
CLAIM_LINE_SCHEMA: dict[str, pl.DataType] = {
    "claim_id": pl.String(),
    "line_number": pl.Int32(),
    "patient_id": pl.String(),
    "rendering_npi": pl.String(),
    "billing_npi": pl.String(),
    "payer": pl.String(),
    "profile": pl.String(),
    "date_of_service": pl.Date(),
    "procedure_code": pl.String(),
    "modifiers": pl.List(pl.String()),
    "units": pl.Decimal(9, 2),
    "minutes": pl.Int32(),
    "charge_amount": pl.Decimal(12, 2),
    "allowed_amount": pl.Decimal(12, 2),
    "place_of_service": pl.String(),
    "diagnosis_codes": pl.List(pl.String()),
    "provider_discipline": pl.String(),
    "assistant_minutes": pl.Int32(),
    "source_file": pl.String(),
    "source_row": pl.Int64(),
    "service_end_date": pl.Date(),        # the end of a DOS range (837 RD8); NULL for one day
    "source_interchange": pl.String(),    # ISA13 of an 837 line (provenance); NULL for flat files
}
CLAIM_LINE_COLUMNS = list(CLAIM_LINE_SCHEMA)

REQUIRED_COLUMNS = ["claim_id", "line_number", "patient_id", "rendering_npi", "date_of_service",
                    "procedure_code", "units"]

# Columns of the canonical CSV header besides the names above: modifiers arrive as four columns.
MODIFIER_COLUMNS = ["modifier_1", "modifier_2", "modifier_3", "modifier_4"]
MAX_MODIFIERS = 4

FINDINGS_COLUMNS = [
    "run_id", "rule_id", "family", "severity",
    "claim_id", "line_number", "patient_id", "rendering_npi", "date_of_service", "procedure_code",
    "related_code", "related_lines", "expected", "actual", "message", "recommended_action",
    "amount_at_risk", "predicted_carc", "reference",
    "fingerprint",   # md5(rule_id|claim_id|line_number|related_code): stable across runs (history.py)
    "status",        # new | recurring, against the previous run of the same scope
]

SEVERITIES = ("error", "warning", "info")
FAMILIES = ("ncci_ptp", "mue", "units_time", "modifiers", "duplicates", "coverage", "data_quality")
