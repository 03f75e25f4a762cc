from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "data" / "sample" / "claims.csv"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

PTP_EXCERPT = SHARED / "cms" / "ccipra-v322r0-f1.excerpt.txt"
MUE_EXCERPT = SHARED / "cms" / "MCR_MUE_PractitionerServices_Eff_07-01-2026.excerpt.csv"

# Quiet and private Prefect for every test (STACK.md); the flow tests share one harness.
for key, value in {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_TASKS_DEFAULT_NO_CACHE": "true"}.items():
    os.environ.setdefault(key, value)


def pytest_sessionstart(session):
    if not SHARED.is_dir():
        raise pytest.UsageError(f"shared test data not found at {SHARED}: the tests read the real files there")


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "wh.duckdb"


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


def write_csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


CANONICAL_HEADER = ("claim_id,line_number,patient_id,rendering_npi,payer,profile,date_of_service,procedure_code,"
                    "modifier_1,modifier_2,modifier_3,modifier_4,units,minutes,charge_amount,allowed_amount,"
                    "place_of_service")


FULL_HEADER = CANONICAL_HEADER + ",provider_discipline,assistant_minutes"


def line(claim, ln, code, *mods, units=1, minutes="", patient="P1", npi="1234567893", dos="2024-06-04",
         profile="medicare", charge="50.00", allowed="", pos="11", discipline=None, assistant=None) -> str:
    """One canonical CSV row for rule tests (with a discipline or assistant minutes: a FULL_HEADER row)."""
    m = list(mods) + [""] * (4 - len(mods))
    fields = [claim, ln, patient, npi, "PAYER", profile, dos, code, *m, units, minutes, charge, allowed, pos]
    if discipline is not None or assistant is not None:
        fields += [discipline or "", "" if assistant is None else assistant]
    return ",".join(str(v) for v in fields)


def audit_lines(tmp_path, *rows, reference=(), name="t", data_quality=False, therapy_ytd=None):
    """Run a whole audit (no Prefect) over canonical rows; returns the findings frame.

    Rule tests skip the data-quality suite (a GX subprocess per audit); tests/test_quality.py covers it."""
    import polars as pl

    from claimaudit import pipeline
    from claimaudit.refdata import import_paths
    from claimaudit.warehouse import connect

    db = tmp_path / f"{name}.duckdb"
    if reference:
        with connect(db) as con:
            import_paths(con, list(reference), parts=1)       # a fixture release is whole in one part file
    full = any(r.count(",") == FULL_HEADER.count(",") for r in rows)
    path = write_csv(tmp_path / f"{name}.csv", FULL_HEADER if full else CANONICAL_HEADER,
                     *[r if r.count(",") == FULL_HEADER.count(",") or not full else r + ",," for r in rows])
    summary = pipeline.run_audit([path], db=db, out=tmp_path / f"{name}-out", data_quality=data_quality,
                                 therapy_ytd_file=therapy_ytd)
    assert summary["quarantined"] == 0, summary["quarantine_reasons"]
    return pl.read_parquet(tmp_path / f"{name}-out" / "findings.parquet")


def keys(findings, *rules):
    """{(rule_id, claim_id, line_number)} of the findings, optionally only some rules."""
    return {(r["rule_id"], r["claim_id"], r["line_number"]) for r in findings.iter_rows(named=True)
            if not rules or r["rule_id"] in rules}


PTP_LAYOUT_HEADER = [
    "CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t",
    "Column1/Column2 Edits\t\t\t\t\t\t",
    "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale",
    "\t\tprior to 1996\tDate\tDate\t0=not allowed\t",
    "\t\t\t\t*=no data\t1=allowed\t",
    "\t\t\t\t\t9=not applicable\t",
]


def ptp_fixture(folder, rows, name="ccipra-v322r0-f1.txt"):
    """A PTP part file in the CMS layout; rows like '97140\\t97530\\t\\t20000101\\t*\\t1'."""
    path = folder / name
    body = PTP_LAYOUT_HEADER + [r if r.count("\t") >= 6 else r + "\tFIXTURE" for r in rows]
    path.write_bytes(("\r\n".join(body) + "\r\n").encode("latin-1"))
    return path


def mue_fixture(folder, rows, effective="01-01-2000"):
    """A practitioner MUE file in the CMS layout; rows like '97035,2,3 Date of Service Edit: Clinical'."""
    path = folder / f"MCR_MUE_PractitionerServices_Eff_{effective}.csv"
    body = ['"copyright\r\nAmerican Medical Association",,,',
            '"HCPCS/\r\nCPT Code",Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale']
    path.write_bytes(("\r\n".join(body + [r + ",FIXTURE" for r in rows]) + "\r\n").encode("latin-1"))
    return path
