"""Runs and history that tell the truth after any failure (issue 13).

A run is completed only when every output is in place; a run that fails is marked failed with its
cause; a run whose process died is marked abandoned by the next command; none of them leaves
partial work behind or becomes a history baseline. Every failure ends with one line. History only
compares what both runs checked. Each test here failed on the code before issue 13."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.errors import RunFailed
from conftest import SAMPLE

REPO = Path(__file__).resolve().parents[1]


def cli(*args, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "claimaudit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})}, cwd=cwd)


def runs(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT run_id, status, failure FROM runs ORDER BY started_at").fetchall()


def leftovers(db: Path, run_id: str) -> dict:
    """What a run that did not complete must not keep."""
    with duckdb.connect(str(db), read_only=True) as con:
        counts = {t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchall()[0][0]
                  for t in ("findings", "claim_lines", "quarantine", "dq_results", "dq_hits")}
        counts["raw tables"] = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE "
                                           "'ingest_raw_%'").fetchall()[0][0]
        counts["dq views"] = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name LIKE "
                                         "'dq_batch_%'").fetchall()[0][0]
    return {k: v for k, v in counts.items() if v}


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().count("\n") == 0, proc.stderr[-3000:]
    return proc.stderr.strip()


@pytest.mark.parametrize("stage", ["ingest", "rules", "findings-written", "reports-written"])
def test_a_killed_plain_audit_is_abandoned_cleaned_up_and_never_a_baseline(tmp_path, stage):
    db = tmp_path / "w.duckdb"
    killed = cli("audit", SAMPLE, "--no-prefect", "--db", db, "--out", tmp_path / "killed",
                 env={"CLAIMAUDIT_TEST_KILL_AT": stage})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (dead, status, _), = runs(db)
    assert status == "running"                          # what the process left: only a later command can tell
    listing = cli("runs", "--db", db)                   # the next command on the warehouse
    assert listing.returncode == 0 and "abandoned" in listing.stdout and "completed" not in listing.stdout
    assert runs(db)[0][1:] == ("abandoned", "the process stopped before the run completed (killed, or the "
                                            "machine went down)")
    assert leftovers(db, dead) == {}
    assert not list((tmp_path / "killed").glob("*.partial-*"))
    summary = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "next", data_quality=False)
    assert summary["history"]["previous_run_id"] is None        # the abandoned run is no baseline
    assert not (tmp_path / ".claimaudit-work").exists()


def test_the_data_quality_worker_dies_with_its_audit_and_leaves_nothing(tmp_path):
    db = tmp_path / "w.duckdb"
    before = set(Path("/tmp").glob("claimaudit-dq-*"))
    killed = cli("audit", SAMPLE, "--no-prefect", "--db", db, "--out", tmp_path / "killed",
                 env={"CLAIMAUDIT_TEST_KILL_AT": "data-quality-started"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    deadline = time.monotonic() + 10

    def workers() -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if proc.name.isdigit() and b"gx_worker" in (proc / "cmdline").read_bytes() and \
                        str(tmp_path).encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
        return found
    while workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers() == []                                        # PR_SET_PDEATHSIG: gone with its parent
    started = time.monotonic()
    summary = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "next")      # no DuckDB lock error
    assert summary["loaded"] == 664 and time.monotonic() - started < 120
    assert runs(db)[0][1] == "abandoned"
    assert leftovers(db, runs(db)[0][0]) == {}                                # its dq_batch view is gone too
    assert set(Path("/tmp").glob("claimaudit-dq-*")) == before                # nothing in the shared /tmp
    assert not (tmp_path / ".claimaudit-work").exists()                      # its private folder swept


@pytest.fixture(scope="module")
def big_extract(tmp_path_factory) -> Path:
    """~300k lines: ingest takes a couple of seconds, long enough to be interrupted mid-query."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    path = tmp_path_factory.mktemp("big") / "claims.csv"
    generate.claims(300_000).write_csv(path)
    return path


@pytest.mark.parametrize("sig, code, words", [("TERM", 143, "stopped by SIGTERM"), ("INT", 130, "interrupted (Ctrl-C)")])
def test_a_signal_in_the_middle_of_a_query_ends_with_one_line(tmp_path, big_extract, sig, code, words):
    db = tmp_path / "w.duckdb"
    pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "earlier", data_quality=False)
    stopped = cli("audit", big_extract, "--no-prefect", "--no-data-quality", "--db", db, "--out", tmp_path / "run",
                  env={"CLAIMAUDIT_TEST_KILL_AT": f"ingest:{sig}:0.5"})
    assert stopped.returncode == code, stopped.stderr[-3000:]
    message = one_line(stopped)
    (earlier, first, _), (run_id, status, failure) = runs(db)
    assert words in message and f"run {run_id} marked failed" in message
    assert (first, status, failure) == ("completed", "failed", words)
    assert leftovers(db, run_id) == {}
    with duckdb.connect(str(db), read_only=True) as con:                       # consistent, earlier run intact
        assert con.execute("SELECT count(*) FROM claim_lines WHERE run_id = ?", [earlier]).fetchall()[0][0] == 665
    assert not (tmp_path / ".claimaudit-work").exists()                      # no spill folder left


def test_a_failing_output_write_marks_the_run_failed_with_one_line(tmp_path, monkeypatch):
    """The mechanism behind a full disk, in-process: the writer fails with ENOSPC halfway."""
    db = tmp_path / "w.duckdb"

    def full(self, path, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(duckdb.DuckDBPyRelation, "write_parquet", full)      # findings.parquet is DuckDB's
    with pytest.raises(RunFailed) as info:
        pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "run", data_quality=False)
    (run_id, status, failure), = runs(db)
    assert str(info.value) == (f"cannot write {tmp_path / 'run' / 'findings.parquet'}: no space left on the device; "
                               f"run {run_id} marked failed and its partial work removed; earlier runs are unchanged")
    assert status == "failed" and failure.startswith("cannot write") and leftovers(db, run_id) == {}
    assert not list((tmp_path / "run").glob("*.partial-*")) and not (tmp_path / "run" / "summary.json").exists()


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MB file system of our own (needs root and mount rights; CI has them, a laptop may not)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root): the in-process ENOSPC test covers the mechanism")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_and_read_only_folders_end_with_one_line_and_a_consistent_warehouse(tmp_path, tmpfs):
    db = tmp_path / "w.duckdb"
    pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "earlier", data_quality=False)
    (tmpfs / "ballast").write_bytes(b"\0" * (1024 * 1024 - 64 * 1024))      # ~64 KB left: outputs won't fit
    full = cli("audit", SAMPLE, "--no-prefect", "--no-data-quality", "--db", db, "--out", tmpfs / "run")
    assert full.returncode == 1, full.stderr[-3000:]
    message = one_line(full)
    assert "no space left on the device" in message and str(tmpfs / "run") in message
    assert [r[1] for r in runs(db)] == ["completed", "failed"]
    assert leftovers(db, runs(db)[1][0]) == {}

    (tmpfs / "ballast").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    read_only = cli("audit", SAMPLE, "--no-prefect", "--db", db, "--out", tmpfs / "again")
    assert read_only.returncode == 1 and "the file system is read-only" in one_line(read_only)
    assert len(runs(db)) == 2                                                 # no run was even started

    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    (tmpfs / "ballast").write_bytes(b"\0" * (1024 * 1024 - 256 * 1024))
    db_full = cli("audit", SAMPLE, "--no-prefect", "--no-data-quality", "--db", tmpfs / "w.duckdb",
                  "--out", tmp_path / "db-full")
    assert db_full.returncode == 1, db_full.stderr[-3000:]
    one_line(db_full)
    assert [r[1] for r in runs(db)] == ["completed", "failed"]               # the other warehouse untouched


def test_history_compares_only_what_both_runs_checked(tmp_path):
    db = tmp_path / "w.duckdb"
    first = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r1", scope="clinic")
    dq = {k: v for k, v in first["findings"]["by_rule"].items() if k.startswith("DQ-")}
    assert sum(dq.values()) == 3
    second = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r2", scope="clinic", data_quality=False)
    assert (second["history"]["resolved"], second["history"]["not_compared"]) == (0, 3)   # not "fixed"
    assert second["data_quality"]["skipped"] and second["families_skipped"] == ["data_quality"]
    third = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r3", scope="clinic")
    assert (third["history"]["new"], third["history"]["resolved"], third["history"]["not_compared"]) == (0, 0, 3)
    assert "Resolved since the previous run" not in (tmp_path / "r3" / "report.html").read_text(encoding="utf-8")
    statuses = pl.read_parquet(tmp_path / "r3" / "findings.parquet").filter(pl.col("family") == "data_quality")
    assert set(statuses["status"]) == {"not_compared"}


def test_report_rerender_keeps_the_original_outputs_unchecked_lines_and_history(tmp_path):
    db = tmp_path / "w.duckdb"
    first = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r1", scope="clinic", data_quality=False)
    later = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r2", scope="clinic", data_quality=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "r1").iterdir() if p.is_file()}
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT status, finished_at, timings FROM runs WHERE run_id = ?", [first["run_id"]]).fetchall()

    refused = cli("report", first["run_id"], "--db", db)
    assert refused.returncode == 2 and "already holds this run's outputs" in one_line(refused)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r1").iterdir() if p.is_file()} == before

    again = cli("report", first["run_id"], "--db", db, "--out", tmp_path / "copy")
    assert again.returncode == 0, again.stderr
    copy = json.loads((tmp_path / "copy" / "summary.json").read_text())
    for key in ("unchecked_lines", "unchecked", "findings", "read", "loaded", "quarantined"):
        assert copy[key] == first[key], key
    html = (tmp_path / "copy" / "report.html").read_text()
    assert later["run_id"] not in html                                   # its trend stops at that run
    with duckdb.connect(str(db), read_only=True) as con:                 # the warehouse is not touched
        assert con.execute("SELECT status, finished_at, timings FROM runs WHERE run_id = ?",
                           [first["run_id"]]).fetchall() == row
    forced = cli("report", first["run_id"], "--db", db, "--force")
    assert forced.returncode == 0 and (tmp_path / "r1" / "report.html").exists()


def test_the_quarantine_tells_one_story(tmp_path):
    summary = pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out")
    (inputs,) = summary["inputs"]
    assert (inputs["rows_read"], inputs["rows_loaded"], inputs["rows_quarantined"]) == (669, 664, 5)
    assert (summary["loaded"], summary["quarantined"]) == (664, 5)
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    assert quarantine.height == 5 and quarantine["patient_id"].null_count() == 1   # original fields on every row
    html = (tmp_path / "out" / "report.html").read_text()
    assert '<td class="num">664</td><td class="num">5</td>' in html


def test_a_mistyped_path_fails_at_once_and_creates_nothing(tmp_path):
    started = time.monotonic()
    proc = cli("audit", tmp_path / "typo.csv", "--db", tmp_path / "w.duckdb", cwd=tmp_path)
    assert proc.returncode == 2 and "typo.csv: no such file" in one_line(proc)
    assert time.monotonic() - started < 10
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_report_xlsx_that_cannot_be_written_fails_the_run_with_one_line(tmp_path, monkeypatch):
    """report.xlsx's write failing at its close (a full disk) ends the run failed, names the file, and
    leaves no partial workbook and no summary."""
    import xlsxwriter

    db = tmp_path / "w.duckdb"

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(xlsxwriter.Workbook, "close", full)
    with pytest.raises(RunFailed) as info:
        pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "run", data_quality=False)
    (run_id, status, failure), = runs(db)
    assert str(info.value).startswith(f"cannot write {tmp_path / 'run' / 'report.xlsx'}: no space left on the device")
    assert status == "failed" and leftovers(db, run_id) == {}
    assert not list((tmp_path / "run").glob("*.partial-*")) and not (tmp_path / "run" / "summary.json").exists()
