"""The bundled sample extract and its hand-checked expected findings."""

from __future__ import annotations

import polars as pl

from claimaudit import pipeline
from conftest import REPO, SAMPLE

EXPECTED = pl.read_csv(REPO / "data" / "sample" / "expected_findings.csv", infer_schema=False)
IMPLEMENTED = {"DUP-001", "REF-001", "PTP-001", "PTP-002", "PTP-003", "MUE-001", "MUE-002", "TIME-001", "TIME-002",
               "TIME-003", "TIME-004", "TIME-005", "TIME-006", "TIME-007", "MOD-001", "MOD-002", "MOD-003",
               "MOD-004", "MOD-005", "MOD-006", "MOD-007", "MOD-008", "MOD-009", "MOD-010", "COV-001",
               "DQ-DOS-RANGE", "DQ-NPI-CHECK-DIGIT", "DQ-POS-CODE"}


def test_sample_reconciles_and_matches_expected_findings(tmp_path):
    summary = pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out")
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (669, 664, 5)
    # the ingest check (5 characters) and DQ-CODE-FORMAT (CPT/HCPCS shape) quarantine one defect under one reason
    assert summary["quarantine_reasons"] == {"bad_code_format": 2, "bad_date:date_of_service": 1,
                                             "missing_required:patient_id": 1, "non_positive_units": 1}
    assert summary["reference"]["starter_set_used"] is True
    findings = pl.read_parquet(tmp_path / "out" / "findings.parquet")
    got = sorted((r["rule_id"], r["claim_id"], int(r["line_number"]))
                 for r in findings.filter(pl.col("rule_id").is_in(IMPLEMENTED)).iter_rows(named=True))
    want = sorted((r["rule_id"], r["claim_id"], int(r["line_number"]))
                  for r in EXPECTED.filter(pl.col("rule_id").is_in(IMPLEMENTED)).iter_rows(named=True))
    assert got == want
    assert set(EXPECTED["rule_id"]) <= IMPLEMENTED | {"MUE-001"}      # every expected finding is asserted
    # both findings files in one order (the CSV is read back from the sorted Parquet)
    keys = ["claim_id", "line_number", "rule_id", "related_code", "reference"]
    csv = pl.read_csv(tmp_path / "out" / "findings.csv", infer_schema=False)
    assert findings.height == csv.height and findings.equals(findings.sort(keys, nulls_last=True))
    assert csv.select(keys).equals(findings.select(pl.col(keys).cast(pl.String)))


def test_sample_data_quality_results(tmp_path):
    summary = pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out")
    dq = summary["data_quality"]
    assert dq["expectations"] == 23 and (tmp_path / "out" / dq["data_docs"]).exists()
    failed = {r["expectation_id"]: (r["level"], r["unexpected_count"], r["rows_acted_on"])
              for r in dq["results"] if not r["success"]}
    assert failed == {"DQ-CODE-FORMAT": ("blocking", 1, 1), "DQ-DOS-RANGE": ("warning", 1, 1),
                      "DQ-NPI-CHECK-DIGIT": ("warning", 1, 1), "DQ-POS-CODE": ("warning", 1, 1)}
    code = next(r for r in dq["results"] if r["expectation_id"] == "DQ-CODE-FORMAT")
    assert code["examples"] == [{"claim_id": "CLM001326", "line_number": 2, "procedure_code": "AB123"}]
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    blocked = quarantine.filter(pl.col("claim_id") == "CLM001326").row(0, named=True)
    assert (blocked["reason"], blocked["line_number"], blocked["procedure_code"]) == ("bad_code_format", "2", "AB123")
    # the original fields, as the file has them (not the loaded, typed values)
    original = pl.read_csv(SAMPLE, infer_schema=False).filter(pl.col("claim_id") == "CLM001326",
                                                             pl.col("line_number") == "2").row(0, named=True)
    assert {k: blocked[k] for k in original} == original


def test_sample_generator_is_deterministic(tmp_path):
    import runpy
    import shutil

    work = tmp_path / "sample"
    shutil.copytree(REPO / "data" / "sample", work)
    runpy.run_path(str(work / "make_sample.py"), run_name="__main__")
    assert (work / "claims.csv").read_bytes() == SAMPLE.read_bytes()
    assert (work / "expected_findings.csv").read_bytes() == (REPO / "data/sample/expected_findings.csv").read_bytes()
