"""Security and PHI (issue 14): no injection through mappings or outputs, bounded imports, claim data
only where the user put it. Every payload here got through on the code before issue 14."""

from __future__ import annotations

import csv
import json
import os
import socket
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.errors import ConfigError, InputError, ReferenceDataError
from claimaudit.ingest.mapping import load_mapping
from claimaudit.refdata import import_paths
from claimaudit.warehouse import connect
from conftest import CANONICAL_HEADER, MUE_EXCERPT, SAMPLE, line, write_csv

HOSTNAME = socket.gethostname()
STEAL = "') CROSS JOIN (SELECT content AS stolen FROM read_text('/etc/hostname')) WHERE ('1'='1"


def _everything_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- injection through a mapping

@pytest.mark.parametrize("key, value", [("delimiter", "," + STEAL), ("encoding", "utf-8" + STEAL)])
def test_format_options_are_checked_against_a_closed_set(tmp_path, prefect_harness, key, value):
    mapping = tmp_path / "client.yaml"
    mapping.write_text(json.dumps({"format": {key: value}}))          # JSON is YAML
    with pytest.raises(ConfigError) as info:
        load_mapping(str(mapping))
    assert f"format.{key} must be one of" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError):
        pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", mapping=str(mapping), out=tmp_path / "out")
    from claimaudit.flow_loader import load_audit_flow

    state = load_audit_flow()([str(SAMPLE)], db=str(tmp_path / "w2.duckdb"), mapping=str(mapping),
                              out=str(tmp_path / "out2"), return_state=True)
    assert state.is_failed() and f"format.{key}" in state.message
    assert HOSTNAME.encode() not in _everything_under(tmp_path)        # nothing outside the input was read


def test_a_separator_that_is_no_regular_expression_is_a_config_error(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text(json.dumps({"modifiers": {"column": "mods", "separator": "[,]" + STEAL}}))
    with pytest.raises(ConfigError, match=r"modifiers\.separator is not a valid regular expression"):
        load_mapping(str(mapping))


def test_every_other_mapping_value_is_data_not_sql(tmp_path):
    """Constants, date formats, separators, payer names, column names: bound, so a payload is a value."""
    header = CANONICAL_HEADER.replace("payer", "pay'er\"); DROP TABLE runs; --")
    path = write_csv(tmp_path / "x.csv", header, line("C1", 1, "97110", "GP", minutes=15))
    mapping = tmp_path / "m.yaml"
    mapping.write_text(json.dumps({
        "columns": {"payer": "pay'er\"); DROP TABLE runs; --"},
        "constants": {"provider_discipline": "PT" + STEAL},
        "date_formats": {"date_of_service": ["%Y-%m-%d" + STEAL, "%Y-%m-%d"]},
        "modifiers": {"columns": ["modifier_1", "modifier_2", "modifier_3", "modifier_4"],
                      "separator": "[,]|'; DROP TABLE runs; --"},
        "payer_profiles": {"PAYER" + STEAL: "medicare"}}))
    summary = pipeline.run_audit([path], db=tmp_path / "w.duckdb", mapping=str(mapping), out=tmp_path / "out",
                                 data_quality=False)
    assert (summary["loaded"], summary["quarantined"]) == (1, 0)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]
        assert con.execute("SELECT provider_discipline, payer FROM claim_lines").fetchall() == [(("PT" + STEAL).upper(), "PAYER")]
    assert HOSTNAME.encode() not in _everything_under(tmp_path / "out")


# ---------------------------------------------------------------- formulas in the outputs

PAYLOADS = ['=HYPERLINK("http://x","click")', "=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def _csv(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CANONICAL_HEADER.split(","))
        writer.writerows(rows)
    return path


def _row(claim, patient, payer, code="97110", mods=(), dos="2024-03-05", charge="50.00") -> list:
    return [claim, 1, patient, "1234567893", payer, "medicare", dos, code, *list(mods) + [""] * (4 - len(mods)),
            1, 15, charge, "", "11"]


def test_formula_payloads_are_text_in_every_spreadsheet_output(tmp_path):
    rows = [_row(f"C{i}", p, p) for i, p in enumerate(PAYLOADS)]                  # MOD-001 (no GP) on each
    rows += [_row(p, "P1", "PAYER", mods=["GP"], dos="2024-03-06") for p in PAYLOADS[:5]]
    rows += [_row(p, p, p, dos="2024-02-30", charge="-5.00") for p in PAYLOADS]    # quarantined: bad date
    path = _csv(tmp_path / "x.csv", rows)
    summary = pipeline.run_audit([path], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    out = tmp_path / "out"
    assert summary["quarantined"] == len(PAYLOADS) and summary["findings"]["by_rule"]["MOD-001"] == len(PAYLOADS)

    workbook = openpyxl.load_workbook(out / "report.xlsx")
    cells = [c for ws in workbook.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]                  # no formula anywhere
    texts = {c.value for c in cells if c.data_type == "s"}
    assert {"=1+1", "@SUM(A1)", '=HYPERLINK("http://x","click")'} <= texts
    assert not [c for c in cells if c.hyperlink]

    for name in ("findings.csv", "quarantine.csv"):
        with open(out / name, newline="", encoding="utf-8") as fh:
            values = [v for row in csv.reader(fh) for v in row]
        risky = [v for v in values if v[:1] in ("=", "+", "-", "@", "\t", "\r") and v != "-5.00"]
        assert risky == [], (name, risky)
        assert "'=1+1" in values and "'@SUM(A1)" in values, name
    quarantine = pl.read_csv(out / "quarantine.csv", infer_schema=False)
    assert set(quarantine["charge_amount"]) == {"-5.00"}                  # a plain number stays a number
    assert {"'\t=1+1", "'\r=1+1"} <= set(quarantine["patient_id"])
    exact = pl.read_parquet(out / "findings.parquet")                    # Parquet keeps the exact values
    assert {"=1+1", "@SUM(A1)"} <= set(exact["patient_id"])


def test_csv_neutralising_in_duckdb_matches_the_polars_rule():
    """findings.csv is written by DuckDB, quarantine.csv through Polars: one rule, two engines."""
    import duckdb

    from claimaudit import spreadsheet

    values = [*PAYLOADS, "-5.00", "+3", "-1.5", "-", "=", "plain", "a=b", " =1", "", None, "-5.00x", "1e5"]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    con = duckdb.connect()
    con.register("f", frame)
    got = con.sql(f"SELECT {spreadsheet.neutralised_sql('v')} FROM f").pl()["v"].to_list()
    assert got == spreadsheet.neutralise(frame)["v"].to_list()
    assert got[:2] == ["'" + PAYLOADS[0], "'=1+1"] and got[len(PAYLOADS)] == "-5.00"


def test_report_html_escapes_claim_fields_in_tables_and_charts(tmp_path):
    script, img = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    path = _csv(tmp_path / "x.csv", [_row(script, img, img), _row("C2", script, script, mods=["GP", "GO"])])
    pipeline.run_audit([path], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x" in html


# ---------------------------------------------------------------- bounded reference imports

def _zip(path: Path, name: str, size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w") as fh:
        block = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            fh.write(block)
    return path


def test_a_zip_bomb_is_refused_with_one_line_and_bounded_memory(tmp_path):
    bomb = _zip(tmp_path / "MUE.zip", "MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", 200 << 20)
    assert bomb.stat().st_size < 1 << 20                                  # < 1 MB on disk, 200 MB unpacked
    # a wrapper process whose only child is the import: its children's peak RSS is the import's
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stderr.write(p.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "claimaudit", "refdata", "import",
                           str(bomb), "--db", str(tmp_path / "w.duckdb")], capture_output=True, text=True, timeout=300)
    peak_mib = int(proc.stdout.split()[-1]) / 1024
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "unpacks to" in proc.stderr and "refused" in proc.stderr
    assert peak_mib < 600, peak_mib                                       # it never held the 200 MB


def test_a_member_past_the_size_limit_is_refused(tmp_path, monkeypatch):
    from claimaudit import archives

    monkeypatch.setattr(archives, "REFERENCE_LIMIT", 64 * 1024)
    with zipfile.ZipFile(tmp_path / "ptp.zip", "w") as zf:                # stored: no compression ratio at play
        zf.writestr("ccipra-v322r0-f1.txt", os.urandom(128 * 1024))
    with connect(tmp_path / "w.duckdb") as con, pytest.raises(ReferenceDataError, match="refused"):
        import_paths(con, [tmp_path / "ptp.zip"])


def test_path_traversal_member_names_write_nowhere(tmp_path):
    target = tmp_path / "escaped"
    with zipfile.ZipFile(tmp_path / "mue.zip", "w") as zf:
        zf.writestr(f"../../../../..{target}/MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", MUE_EXCERPT.read_bytes())
    with connect(tmp_path / "w.duckdb") as con:
        (result,) = import_paths(con, [tmp_path / "mue.zip"])
    assert result.rows_loaded == 44 and not target.exists()


def test_an_xlsx_bomb_extract_is_refused(tmp_path):
    bomb = _zip(tmp_path / "claims.xlsx", "xl/worksheets/sheet1.xml", 100 << 20)
    with pytest.raises(InputError, match="refused"):
        pipeline.run_audit([bomb], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)


# ---------------------------------------------------------------- PHI stays where the user put it

MARKER = "PHIMARKER7731"


def _bad_inputs(folder: Path) -> list[Path]:
    """One input of each kind that fails or quarantines, each carrying the marker as a patient id."""
    good = line("C1", 1, "97110", "GP", minutes=15, patient=MARKER)
    headerless = write_csv(folder / "headerless.csv", good, line("C2", 1, "97110", "GP", patient=MARKER))
    unmapped = write_csv(folder / "unmapped.csv", CANONICAL_HEADER + ",notes", good + f",{MARKER}")
    encoding = folder / "latin1.csv"
    encoding.write_bytes((CANONICAL_HEADER + "\n" + good.replace("PAYER", "JOSÉ") + "\n").encode("latin-1"))
    quarantined = write_csv(folder / "bad-date.csv", CANONICAL_HEADER, good.replace("2024-06-04", "2024-02-30"),
                            f"C3,1,{MARKER},1234567893")
    ragged = write_csv(folder / "ragged.csv", CANONICAL_HEADER, "C4,1," + MARKER + ',"unterminated')
    return [headerless, unmapped, encoding, quarantined, ragged]


def test_claim_data_never_reaches_prefect_stderr_or_tmp(tmp_path, prefect_harness, capfd):
    from prefect.settings import get_current_settings

    from claimaudit.flow_loader import load_audit_flow

    database = Path(get_current_settings().server.database.connection_url.get_secret_value().split(":///")[-1])
    tmp_before = {p for p in Path("/tmp").iterdir() if not p.name.startswith("pytest-of-")}
    flow = load_audit_flow()
    messages = []
    for i, path in enumerate(_bad_inputs(tmp_path)):
        state = flow([str(path)], db=str(tmp_path / "w.duckdb"), out=str(tmp_path / f"run{i}"), return_state=True)
        messages.append(state.message or "")
        proc = subprocess.run([sys.executable, "-m", "claimaudit", "audit", str(path), "--no-prefect",
                               "--db", str(tmp_path / "w2.duckdb"), "--out", str(tmp_path / f"cli{i}")],
                              capture_output=True, text=True, timeout=300)
        messages += [proc.stdout, proc.stderr]
    assert any("no recognizable header" in m for m in messages)           # the failures did happen
    assert any("'notes' (column 18)" in m for m in messages)
    captured = capfd.readouterr()
    assert MARKER not in captured.out + captured.err + "".join(messages)
    time.sleep(1)                                                          # let the server flush its writes
    assert database.exists() and MARKER.encode() not in _everything_under(database.parent)
    new_tmp = {p for p in Path("/tmp").iterdir() if not p.name.startswith("pytest-of-")} - tmp_before
    leaked = [p for p in new_tmp if (p.is_file() and MARKER.encode() in p.read_bytes())
              or (p.is_dir() and MARKER.encode() in _everything_under(p))]
    assert leaked == []


def test_report_xlsx_is_assembled_in_memory_not_in_tmp(tmp_path, monkeypatch):
    """xlsxwriter writes each sheet's XML to tempfile.mkstemp() (/tmp) before zipping unless told
    otherwise: the findings sheet (claim and patient ids) would sit in /tmp while it is written."""
    import tempfile

    made = []
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        made.append((args, kwargs))
        return real(*args, **kwargs)
    monkeypatch.setattr(tempfile, "mkstemp", spy)
    summary = pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    assert summary["findings"]["total"] > 0 and (tmp_path / "out" / "report.xlsx").exists()
    assert made == []


def test_the_data_quality_worker_files_live_in_a_private_folder(tmp_path, monkeypatch):
    from claimaudit.quality import runner

    seen = []
    real = runner._hand_over

    def spy(proc, args_path):
        folder = Path(args_path).parent
        seen.append((folder, stat.S_IMODE(folder.stat().st_mode)))
        return real(proc, args_path)
    monkeypatch.setattr(runner, "_hand_over", spy)
    pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out")
    ((folder, mode),) = seen
    assert folder.parent == tmp_path / ".claimaudit-work" and folder.name.startswith(f"dq-{os.getpid()}-")
    assert mode == 0o700
    assert not folder.exists() and not (tmp_path / ".claimaudit-work").exists()


# ---------------------------------------------------------------- purge

def test_purge_removes_a_clients_claim_data_from_the_warehouse_file(tmp_path):
    db = tmp_path / "w.duckdb"
    client_a = tmp_path / "a.csv"
    client_a.write_text(SAMPLE.read_text().replace("PT2", "ZZCLIENTA2"))
    pipeline.run_audit([client_a], db=db, out=tmp_path / "a", scope="client-a", data_quality=False)
    kept = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "b", scope="client-b", data_quality=False)
    assert b"ZZCLIENTA2" in db.read_bytes() or b"ZZCLIENTA2" in Path(f"{db}.wal").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "claimaudit", "purge", "--scope", "client-a", "--outputs", "--yes",
                           "--db", str(db)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert b"ZZCLIENTA2" not in db.read_bytes() and not Path(f"{db}.wal").exists()
    assert not (tmp_path / "a").exists() and (tmp_path / "b" / "report.html").exists()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT run_id FROM runs").fetchall() == [(kept["run_id"],)]
        assert con.execute("SELECT count(*) FROM claim_lines").fetchall() == [(665,)]
    again = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "c", scope="client-b", data_quality=False)
    assert again["history"]["previous_run_id"] == kept["run_id"]      # the rewritten warehouse works on
