"""The Great Expectations suite: every expectation fails on its own fixture; blocking rows are
quarantined and warning rows become DQ findings; the GX/DuckDB workaround is still needed and works."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import duckdb
import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.errors import ClaimAuditError
from claimaudit.quality.runner import _validate, suite_path
from conftest import CANONICAL_HEADER, audit_lines, line, write_csv

GOOD = dict(claim_id="G", line_number=1, patient_id="P1", rendering_npi="1234567893", billing_npi="1234567893",
            payer="MEDICARE", profile="medicare", date_of_service=date(2024, 3, 5), procedure_code="97110",
            modifiers=["GP"], units=1.0, minutes=15, charge_amount=50.0, allowed_amount=30.0, place_of_service="11",
            diagnosis_codes=["M5450"], provider_discipline="PT", assistant_minutes=None)

# one row per expectation, failing that expectation and no other
FAILING = {
    "DQ-REQUIRED-CLAIM-ID": dict(claim_id=None),
    "DQ-REQUIRED-LINE-NUMBER": dict(line_number=None),
    "DQ-REQUIRED-PATIENT-ID": dict(patient_id=None),
    "DQ-REQUIRED-RENDERING-NPI": dict(rendering_npi=None),
    "DQ-REQUIRED-DATE-OF-SERVICE": dict(date_of_service=None),
    "DQ-REQUIRED-PROCEDURE-CODE": dict(procedure_code=None),
    "DQ-REQUIRED-UNITS": dict(units=None),
    "DQ-LINE-KEY-UNIQUE": dict(claim_id="G"),                    # repeats the good row's key: 2 rows
    "DQ-CODE-FORMAT": dict(procedure_code="478331"),            # the X12 samples' 6-character code
    "DQ-MODIFIER-FORMAT": dict(modifiers=["GP", "X"]),
    "DQ-UNITS-POSITIVE": dict(units=0.0),
    "DQ-BILLING-NPI-FORMAT": dict(billing_npi="12345"),
    "DQ-NPI-CHECK-DIGIT": dict(rendering_npi="1234567890"),
    "DQ-DOS-RANGE": dict(date_of_service=date(1999, 1, 1)),
    "DQ-UNITS-WHOLE": dict(units=1.5),
    "DQ-MINUTES-RANGE": dict(minutes=500),
    "DQ-CHARGE-NEGATIVE": dict(charge_amount=-5.0, allowed_amount=None),
    "DQ-CHARGE-MISSING": dict(charge_amount=None),
    "DQ-ALLOWED-OVER-CHARGE": dict(allowed_amount=60.0),
    "DQ-POS-CODE": dict(place_of_service="85"),
    "DQ-ICD10-FORMAT": dict(diagnosis_codes=["M5450", "7241"]),   # an ICD-9 code
    "DQ-PAYER-MISSING": dict(payer=None),
    "DQ-ASSISTANT-MINUTES": dict(assistant_minutes=20),
}


def test_suite_covers_the_issue_list_and_every_expectation_has_a_fixture():
    spec = json.loads(suite_path().read_text())
    ids = [e["meta"]["id"] for e in spec["expectations"]]
    assert sorted(ids) == sorted(FAILING) and len(set(ids)) == len(ids)
    assert {e["meta"]["level"] for e in spec["expectations"]} == {"blocking", "warning"}


def _fixture_db(tmp_path, rows: list[dict]):
    """A warehouse file whose table ``fixture`` holds ``rows`` in claim_lines' types."""
    frame = pl.DataFrame(rows, schema_overrides={  # noqa: F841 (DuckDB reads it by name below)
        "modifiers": pl.List(pl.String), "diagnosis_codes": pl.List(pl.String), "assistant_minutes": pl.Int32,
        "line_number": pl.Int32})
    db = tmp_path / "dq.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE fixture AS SELECT * REPLACE (units::DECIMAL(9,2) AS units, "
                    "charge_amount::DECIMAL(12,2) AS charge_amount, allowed_amount::DECIMAL(12,2) AS allowed_amount) "
                    "FROM frame")
    return db


def test_each_expectation_fails_on_its_fixture_and_only_there(tmp_path):
    rows = [GOOD] + [{**GOOD, "claim_id": f"B{i}", **change} if "claim_id" not in change else {**GOOD, **change}
                     for i, change in enumerate(FAILING.values())]
    db = _fixture_db(tmp_path, rows)
    results = {r["id"]: r for r in _validate(db, "fixture-run", "fixture")["results"]}
    assert not [r["error"] for r in results.values() if r["error"]]
    counts = {k: r["unexpected_count"] for k, r in results.items()}
    assert counts == {k: 2 if k == "DQ-LINE-KEY-UNIQUE" else 1 for k in FAILING}


def test_blocking_rows_are_quarantined_and_warnings_become_findings(tmp_path):
    rows = [line("A", 1, "99213", dos="2024-03-05"),
            line("A", 2, "AB123", dos="2024-03-05"),                                   # blocking
            line("B", 1, "99213", npi="1234567890", dos="2024-03-06"),                 # check digit
            line("C", 1, "99213", dos="1999-03-05"),                                    # DOS range
            line("D", 1, "99213", units="1.5", dos="2024-03-07"),                       # whole units
            line("E", 1, "G0283", "GP", minutes=500, dos="2024-03-08"),                 # minutes range
            line("F", 1, "99213", charge="-5.00", dos="2024-03-09"),                    # negative charge
            line("G", 1, "99213", charge="50.00", allowed="60.00", dos="2024-03-10"),   # allowed > charge
            line("H", 1, "99213", pos="85", dos="2024-03-11")]                          # POS
    path = write_csv(tmp_path / "dq.csv", CANONICAL_HEADER, *rows)
    summary = pipeline.run_audit([path], db=tmp_path / "w.duckdb", out=tmp_path / "out")
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (9, 8, 1)
    # DQ-CODE-FORMAT quarantines with the ingest reason for the same defect (one vocabulary)
    assert summary["quarantine_reasons"] == {"bad_code_format": 1}
    findings = pl.read_parquet(tmp_path / "out" / "findings.parquet").filter(pl.col("family") == "data_quality")
    got = {(r["rule_id"], r["claim_id"]) for r in findings.iter_rows(named=True)}
    assert got == {("DQ-NPI-CHECK-DIGIT", "B"), ("DQ-DOS-RANGE", "C"), ("DQ-UNITS-WHOLE", "D"),
                   ("DQ-MINUTES-RANGE", "E"), ("DQ-CHARGE-NEGATIVE", "F"), ("DQ-ALLOWED-OVER-CHARGE", "G"),
                   ("DQ-POS-CODE", "H")}
    assert set(findings["severity"]) == {"warning"} and findings["message"].null_count() == 0
    assert (tmp_path / "out" / "data-docs" / "index.html").exists()


def test_a_suite_that_cannot_run_stops_the_run_with_one_line(tmp_path, monkeypatch):
    broken = tmp_path / "suite.json"
    broken.write_text(json.dumps({"name": "claim_lines", "expectations": [
        {"type": "expect_column_values_to_be_a_unicorn", "kwargs": {"column": "claim_id"}, "meta": {"id": "X"}}]}))
    monkeypatch.setenv("CLAIMAUDIT_SUITE", str(broken))
    with pytest.raises(ClaimAuditError, match=r"the data-quality suite .* could not run") as info:
        audit_lines(tmp_path, line("A", 1, "99213"), data_quality=True)
    assert "\n" not in str(info.value)


WORKAROUND_PROBE = """
import json, sys
import duckdb
db = sys.argv[1]
con = duckdb.connect(db); con.execute("CREATE TABLE t AS SELECT range AS x, CASE WHEN range % 10 = 0 THEN NULL ELSE 1 END AS y FROM range(100)"); con.close()
import great_expectations as gx
import great_expectations.expectations as gxe
if sys.argv[2] == "patched":
    from claimaudit.quality.gx_worker import patch_duckdb_persisted_connection
    patch_duckdb_persisted_connection()
ctx = gx.get_context(mode="ephemeral")
batch = ctx.data_sources.add_sql(name="w", connection_string=f"duckdb:///{db}?access_mode=read_only") \\
    .add_table_asset(name="t", table_name="t").add_batch_definition_whole_table("b").get_batch()
r = batch.validate(gxe.ExpectColumnValuesToNotBeNull(column="y"))
raised = bool(r.exception_info and any(v.get("raised_exception") for v in r.exception_info.values()
                                      if isinstance(v, dict))) or bool(r.exception_info.get("raised_exception", False))
print(json.dumps({"raised": raised, "count": r.result.get("unexpected_count")}))
"""


@pytest.mark.parametrize("mode, expected", [
    ("unpatched", {"raised": True, "count": None}),      # if this starts passing, GX fixed it: drop the workaround
    ("patched", {"raised": False, "count": 10}),
])
def test_gx_duckdb_workaround_still_needed_and_working(tmp_path, mode, expected):
    proc = subprocess.run([sys.executable, "-c", WORKAROUND_PROBE, str(tmp_path / f"{mode}.duckdb"), mode],
                          capture_output=True, text=True, timeout=300)
    out = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert out, proc.stderr[-2000:]
    assert json.loads(out[-1]) == expected


def test_each_unexpected_rows_query_runs_once(tmp_path):
    """GX's unexpected_rows_expectation runs its query twice, for up to 200 rows (which a SUMMARY result
    drops) and for their count (GX PR #10604); the worker asks for the count alone: at 10M lines the
    suite's NPI check-digit and line-key queries took ~1.1 s each time."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from claimaudit.quality import gx_worker

    db = _fixture_db(tmp_path, [GOOD, {**GOOD, "claim_id": "B", "procedure_code": "478331"}])
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)
    event.listen(Engine, "before_cursor_execute", seen)
    try:
        out = gx_worker.validate({"db": str(db), "run_id": "r", "view": "fixture", "suite": str(suite_path())})
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    results = {r["id"]: r for r in out["results"]}
    assert results["DQ-CODE-FORMAT"]["unexpected_count"] == 1 and not results["DQ-CODE-FORMAT"]["success"]
    assert results["DQ-CODE-FORMAT"]["type"] == "unexpected_rows_expectation"       # as the suite names it
    assert results["DQ-NPI-CHECK-DIGIT"]["success"] and not any(r["error"] for r in results.values())
    queries = [e["kwargs"]["unexpected_rows_query"] for e in json.loads(suite_path().read_text())["expectations"]
               if e["type"] == "unexpected_rows_expectation"]
    assert len(queries) == 6
    for query in queries:
        marker = query.replace("{{", "{").replace("}}", "}").split("{batch}")[-1][-40:]   # its own text
        assert sum(marker in s for s in statements) == 1, marker


def test_the_npi_check_digit_is_computed_once_per_distinct_npi():
    """The suite says the check digit is checked once per distinct NPI. DuckDB pushes a filter through
    a DISTINCT into the scan, which would compute it on every line (2.6 s instead of 0.1 s at 10M):
    the operator that computes it must read the distinct NPIs, not the lines."""
    suite = json.loads(suite_path().read_text(encoding="utf-8"))
    query = next(e["kwargs"]["unexpected_rows_query"] for e in suite["expectations"]
                 if e["meta"]["id"] == "DQ-NPI-CHECK-DIGIT").replace("{{", "{").replace("}}", "}")
    with duckdb.connect() as con:
        con.execute("CREATE TABLE b AS SELECT 'C' || i AS claim_id, 1 AS line_number, "
                    "['1234567893', '1234567890', '123'][i % 3 + 1] AS rendering_npi FROM range(3000) t(i)")
        sql = query.replace("{batch}", "b")
        assert con.execute(f"SELECT count(*) FROM ({sql})").fetchall() == [(2000,)]      # 2 of 3 NPIs are bad
        plan = json.loads(con.execute(f"EXPLAIN (FORMAT json) {sql}").fetchall()[0][1])

    def computing(node):        # the operators whose expressions hold the check digit's arithmetic
        here = [node] if "substr" in json.dumps(node.get("extra_info", {})) else []
        return here + [n for c in node.get("children", []) for n in computing(c)]

    def below(node):
        return [node["name"]] + [n for c in node.get("children", []) for n in below(c)]

    nodes = [n for root in plan for n in computing(root)]
    assert nodes and all("HASH_GROUP_BY" in below(n) for n in nodes)
