"""The CLI as users run it: real subprocesses for the audit and the error paths."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from claimaudit.cli import cli
from conftest import MUE_EXCERPT, PTP_EXCERPT, SAMPLE


def claimaudit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "claimaudit", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_audit_refdata_runs_report_end_to_end(tmp_path):
    db = tmp_path / "w.duckdb"
    imported = claimaudit("refdata", "import", PTP_EXCERPT, MUE_EXCERPT, "--db", db, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "PTP v322r0 f1: 154 rows loaded, 1 bad row(s): line 161 truncated_row" in imported.stdout
    assert "MUE 2026-07-01: 44 rows loaded" in imported.stdout
    # the excerpt is part 1 of the release's 4, and cut: imported, reported, never used as the release
    assert ("release v322r0 incomplete: parts f2, f3, f4 missing; f1 truncated: the dates it covers stay unchecked "
            "for PTP until it is complete") in imported.stdout
    again = claimaudit("refdata", "import", PTP_EXCERPT, "--db", db, cwd=tmp_path)
    assert "already imported (same content), skipped" in again.stdout

    listing = claimaudit("refdata", "list", "--db", db, cwd=tmp_path)
    assert listing.returncode == 0 and "v322r0" in listing.stdout and "2026-07-01" in listing.stdout

    result = claimaudit("audit", SAMPLE, "--db", db, "--out", tmp_path / "run", "--no-prefect", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "read 669 = loaded 664 + quarantined 5" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {"findings.csv", "findings.parquet", "quarantine.csv", "summary.json"} <= set(summary["outputs"])
    assert summary["read"] == summary["loaded"] + summary["quarantined"]
    # CMS PTP v322r0 covers DOS up to 2026-09-30 only; MUE 2026-07-01 only from July: the rest is unchecked
    assert summary["unchecked_lines"]["mue"] > 0
    assert summary["reference"]["starter_set_used"] is False
    assert {v["version"] for v in summary["reference"]["versions"] if v["lines"]} == {"2026-07-01"}
    assert {c["reason"] for c in summary["unchecked"] if c["family"] == "ncci_ptp"} == {
        "release v322r0 incomplete: parts f2, f3, f4 missing; f1 truncated"}
    assert "unchecked ncci_ptp: release v322r0 incomplete" in result.stdout
    # hundreds of REF-001 lines read as one line per cause (the line-level truth stays in findings)
    (mue,) = [c for c in summary["unchecked"] if c["family"] == "mue"]
    assert (mue["reason"], mue["lines"], mue["last_date"]) == ("no MUE file loaded is in force on the date",
                                                               summary["unchecked_lines"]["mue"], "2026-06-30")
    assert mue["dollars"] > 0 and summary["findings"]["by_rule"]["REF-001"] >= mue["lines"]
    assert result.stdout.count("unchecked ") == len(summary["unchecked"])
    assert len(summary["inputs"][0]["sha256"]) == 64 and summary["code_version"].startswith("0.1.0")

    runs = claimaudit("runs", "--db", db, cwd=tmp_path)
    assert summary["run_id"] in runs.stdout and "completed" in runs.stdout
    for name in ("findings.csv", "report.html", "report.xlsx"):
        (tmp_path / "run" / name).unlink()
    rerendered = claimaudit("report", summary["run_id"], "--db", db, "--force", cwd=tmp_path)
    assert rerendered.returncode == 0, rerendered.stderr
    for name in ("findings.csv", "report.html", "report.xlsx"):
        assert (tmp_path / "run" / name).exists(), name


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    cases = [
        (["audit", tmp_path / "missing.csv", "--no-prefect"], "missing.csv: no such file"),
        (["audit", SAMPLE, "--profile", "tricare", "--no-prefect"], "unknown profile 'tricare'"),
        (["audit", SAMPLE, "--mapping", "nope", "--no-prefect"], "unknown mapping preset 'nope'"),
        (["refdata", "import", tmp_path / "x.pdf"], "x.pdf: no such file"),
        (["report", "no-such-run"], "no run 'no-such-run'"),
    ]
    for args, message in cases:
        result = claimaudit(*args, "--db", tmp_path / "w.duckdb", cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and message in result.stderr, (args, result.stderr)
        assert result.stderr.strip().count("\n") == 0, result.stderr


def test_help_lists_the_contract_commands():
    out = CliRunner().invoke(cli, ["--help"]).output
    for command in ("audit", "refdata", "report", "runs"):
        assert command in out


def test_an_837_without_its_isa_header_is_named_as_such(tmp_path):
    from conftest import SHARED

    result = claimaudit("audit", SHARED / "x12" / "837p" / "imsweb_x12_no_isa_line.txt", "--no-prefect",
                        "--db", tmp_path / "w.duckdb", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "X12 GS segment but the file has no ISA interchange header: the envelope is missing" in result.stderr
    assert "missing canonical columns" not in result.stderr and result.stderr.strip().count("\n") == 0


def test_a_run_that_loads_nothing_says_so_and_strict_fails_it(tmp_path):
    from conftest import SHARED

    rif = SHARED / "cms" / "bfd_rif_sample_a_bcarrier_multiple_lines.txt"
    result = claimaudit("audit", rif, "--mapping", "cms_rif_carrier", "--no-prefect", "--db", tmp_path / "w.duckdb",
                        "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "loaded 0 + quarantined 7" in result.stdout
    assert "nothing was loaded: no line was audited (every row was quarantined" in result.stdout
    assert "data quality: checked nothing (no lines loaded)" in result.stdout and "all passed" not in result.stdout
    strict = claimaudit("audit", rif, "--mapping", "cms_rif_carrier", "--no-prefect", "--strict",
                        "--db", tmp_path / "w.duckdb", "--out", tmp_path / "run2", cwd=tmp_path)
    assert strict.returncode == 1 and "nothing was loaded" in strict.stdout
    ok = claimaudit("audit", SAMPLE, "--no-prefect", "--no-data-quality", "--strict", "--db", tmp_path / "w.duckdb",
                    "--out", tmp_path / "run3", cwd=tmp_path)
    assert ok.returncode == 0 and "nothing was loaded" not in ok.stdout
    assert "PTP-002 NCCI pair without a bypass modifier" in ok.stdout                # rule names in the printout


def test_the_printout_says_where_the_lines_got_their_profile(tmp_path):
    result = claimaudit("audit", SAMPLE, "--profile", "commercial_cpt", "--no-prefect", "--no-data-quality",
                        "--db", tmp_path / "w.duckdb", "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("profiles: 669 row(s) name their profile in the file, 0 take it from the mapping's payer map, 0 the run "
            "default (commercial_cpt)") in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["profile_sources"] == {"file": 669, "payer_map": 0, "run_default": 0}
    bare = tmp_path / "no_profile.csv"                          # without the column, every line takes --profile
    import polars as pl

    pl.read_csv(SAMPLE, infer_schema=False).drop("profile").write_csv(bare)
    again = claimaudit("audit", bare, "--profile", "commercial_cpt", "--no-prefect", "--no-data-quality",
                       "--db", tmp_path / "w.duckdb", "--out", tmp_path / "run2", cwd=tmp_path)
    assert again.returncode == 0 and "profiles:" not in again.stdout
    assert json.loads((tmp_path / "run2" / "summary.json").read_text())["profile_sources"]["run_default"] == 669
