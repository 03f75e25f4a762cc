"""Incremental landing-folder runs: skip re-sent files, supersede corrected claims, audit touched days
only, merge history, one writer per warehouse, and survive kill -9 at any stage."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from claimaudit import landing, pipeline
from claimaudit.locking import WarehouseBusy, warehouse_lock

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "claims.csv"
TV02 = "CLM001302"      # TV-02: 4 timed units billed, 47 minutes support 3 -> TIME-001 on line 1


def _landing(folder: Path, db: Path, out: Path, **kw) -> dict:
    # settle 0: these tests drop files atomically (test_settle_* cover the default)
    return pipeline.run_landing(folder, db=db, out=out, scope="clinic", data_quality=False, **{"settle_seconds": 0, **kw})


def _fingerprints(db: Path, run_id: str) -> set[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return set(con.execute("SELECT rule_id, claim_id, line_number, coalesce(related_code, '') FROM findings "
                               "WHERE run_id = ?", [run_id]).fetchall())


def _corrected_tv02(path: Path) -> None:
    """The TV-02 claim re-sent corrected: 97112 24 min + 97110 23 min = 47 min = 3 units, and the
    extra unit belongs to 97112 (more leftover minutes), so 97110 on line 2 drops to 1 unit."""
    claim = pl.read_csv(SAMPLE, infer_schema=False).filter(pl.col("claim_id") == TV02)
    claim.with_columns(units=pl.when(pl.col("line_number") == "2").then(pl.lit("1"))
                       .otherwise(pl.col("units"))).write_csv(path)


@pytest.fixture()
def reference_run(tmp_path_factory) -> set[tuple]:
    """The sample's findings from a plain (non-incremental) audit."""
    d = tmp_path_factory.mktemp("plain")
    summary = pipeline.run_audit([SAMPLE], db=d / "w.duckdb", out=d / "out", data_quality=False)
    return _fingerprints(d / "w.duckdb", summary["run_id"])


def test_resend_correction_and_history(tmp_path, reference_run):
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "extract-0601.csv")

    first = _landing(land, db, tmp_path / "r1")
    assert first["landing"]["files_new"] == [str(land / "extract-0601.csv")]
    assert first["landing"]["lines_audited"] == first["loaded"] == 665     # 669 read, 4 quarantined (no DQ)
    assert _fingerprints(db, first["run_id"]) == reference_run          # same findings as a plain audit

    shutil.copy(SAMPLE, land / "extract-0601-resent.csv")                # same content, new name
    second = _landing(land, db, tmp_path / "r2")
    assert second["landing"]["files_new"] == []
    assert len(second["landing"]["files_skipped"]) == 2
    assert second["read"] == 0 and second["landing"]["lines_audited"] == 0
    assert _fingerprints(db, second["run_id"]) == reference_run          # carried forward, not lost
    assert (second["history"]["new"], second["history"]["resolved"]) == (0, 0)
    assert second["history"]["recurring"] == len(reference_run)

    _corrected_tv02(land / "extract-0602-correction.csv")
    third = _landing(land, db, tmp_path / "r3")
    info = third["landing"]
    assert (info["claims_replaced"], info["lines_replaced"], info["days_audited"]) == (1, 2, 1)
    assert ("TIME-001", TV02, 1, "") in reference_run
    assert _fingerprints(db, third["run_id"]) == reference_run - {("TIME-001", TV02, 1, "")}
    assert (third["history"]["new"], third["history"]["resolved"]) == (0, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ledger_lines").fetchall()[0][0] == 665     # replaced, not added
        assert con.execute("SELECT units FROM ledger_lines WHERE claim_id = ? AND line_number = 2",
                           [TV02]).fetchall()[0][0] == 1
        assert con.execute("SELECT count(*) FROM pending_days").fetchall()[0][0] == 0
        assert {r[0] for r in con.execute("SELECT status FROM landing_files").fetchall()} == {"audited"}


def test_newer_file_in_the_same_batch_wins(tmp_path):
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "a-original.csv")
    _corrected_tv02(land / "b-correction.csv")
    os.utime(land / "a-original.csv", (1_700_000_000, 1_700_000_000))    # the original is older
    summary = _landing(land, db, tmp_path / "r1")
    assert summary["read"] == 671 and summary["loaded"] == 667          # both files read, nothing dropped
    assert summary["landing"]["lines_superseded_in_batch"] == 2
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ledger_lines").fetchall()[0][0] == 665
        assert con.execute("SELECT units FROM ledger_lines WHERE claim_id = ? AND line_number = 2",
                           [TV02]).fetchall()[0][0] == 1


def test_full_reaudit_audits_every_day(tmp_path):
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "a.csv")
    first = _landing(land, db, tmp_path / "r1")
    full = _landing(land, db, tmp_path / "r2", full=True)
    assert full["landing"]["lines_audited"] == 665
    assert full["landing"]["days_audited"] == first["landing"]["days_audited"]
    assert _fingerprints(db, full["run_id"]) == _fingerprints(db, first["run_id"])


def test_second_writer_fails_fast_and_touches_nothing(tmp_path):
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "a.csv")
    with warehouse_lock(db):
        with pytest.raises(WarehouseBusy, match="another claimaudit run is using this warehouse"):
            _landing(land, db, tmp_path / "r1")
        with pytest.raises(WarehouseBusy):
            pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r2", data_quality=False)
    assert not db.exists()                                              # nothing was written
    assert _landing(land, db, tmp_path / "r3")["loaded"] == 665          # the lock is free again


def _cli_landing(land: Path, db: Path, out: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLAIMAUDIT_TEST_KILL_AT": kill_at or ""}
    return subprocess.run([sys.executable, "-c", "from claimaudit.cli import main; main()", "landing", str(land), "--db", str(db),
                           "--out", str(out), "--scope", "clinic", "--no-data-quality", "--settle", "0"],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("stage", ["ingested", "applied", "rules", "outputs"])
def test_kill_9_at_a_stage_then_the_next_run_finishes(tmp_path, reference_run, stage):
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "a.csv")
    killed = _cli_landing(land, db, tmp_path / "killed", kill_at=stage)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]

    done = _cli_landing(land, db, tmp_path / "next")
    assert done.returncode == 0, done.stderr[-2000:]
    with duckdb.connect(str(db), read_only=True) as con:
        runs = con.execute("SELECT run_id, status FROM runs ORDER BY started_at").fetchall()
        last = runs[-1][0]
        assert runs[-1][1] == "completed"
        # the dead run is marked abandoned (unless it had already completed: killed after outputs)
        assert runs[0][1] == ("completed" if stage == "outputs" else "abandoned")
        assert con.execute("SELECT count(*) FROM ledger_lines").fetchall()[0][0] == 665
        assert con.execute("SELECT count(*) FROM pending_days").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*), count(DISTINCT (claim_id, line_number)) FROM ledger_lines"
                           ).fetchall()[0] == (665, 665)
    assert _fingerprints(db, last) == reference_run


def test_lines_quarantined_by_data_quality_leave_the_ledger(tmp_path):
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "a.csv")
    first = pipeline.run_landing(land, db=db, out=tmp_path / "r1", scope="clinic", settle_seconds=0)  # with the GX suite
    assert (first["read"], first["loaded"], first["quarantined"]) == (669, 664, 5)
    full = pipeline.run_landing(land, db=db, out=tmp_path / "r2", scope="clinic", full=True, settle_seconds=0)
    assert (full["read"], full["loaded"], full["quarantined"]) == (0, 0, 0)   # nothing re-quarantined
    assert full["landing"]["ledger_lines"] == full["landing"]["lines_audited"] == 664


def test_x12_claims_and_remittances_land_by_content(tmp_path):
    """An 837 is picked up whatever its name; an 835 arriving alone re-audits the days of the claims
    it pays and links them; a file that is neither is reported, not silently passed over."""
    from remits import write_835  # tests/remits.py

    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "extract.csv")
    shutil.copy(Path(__file__).resolve().parents[2] / "shared" / "data" / "x12" / "837p" / "demo.example1.837",
                land / "batch.837")
    (land / "notes.docx").write_bytes(b"minutes of the billing meeting")
    first = _landing(land, db, tmp_path / "r1")
    info = first["landing"]
    assert sorted(info["files_new"]) == [str(land / "batch.837"), str(land / "extract.csv")]
    assert info["files_ignored"] == [str(land / "notes.docx")]
    assert first["read"] == 669 + 4 and first["reconciled"]
    assert first.get("denials") is None

    line = pl.read_csv(SAMPLE, infer_schema=False).filter(pl.col("claim_id") == TV02).sort("line_number").to_dicts()[0]
    write_835([(TV02, [(line, "0", "CO*151")])], land / "remit-0610.835")      # the payer's answer, alone
    second = _landing(land, db, tmp_path / "r2")
    info = second["landing"]
    assert info["files_new"] == [str(land / "remit-0610.835")]
    assert (info["remittance_files"], info["remit_claims"], info["remit_claims_in_ledger"]) == (1, 1, 1)
    assert second["read"] == 0 and info["days_audited"] == 1        # the paid claim's day, from the ledger
    d = second["denials"]
    assert (d["remit_lines"], d["matched"], d["denied_lines"]) == (1, 1, 1)
    assert d["preventable_dollars"] == float(line["charge_amount"])   # TIME-001 had flagged it
    assert _fingerprints(db, second["run_id"]) == _fingerprints(db, first["run_id"])
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM pending_days").fetchall()[0][0] == 0

    third = _landing(land, db, tmp_path / "r3")                     # the same 835 again: seen, skipped
    assert third["landing"]["files_new"] == [] and third.get("denials") is None


def test_settle_by_default_a_file_still_being_written_is_not_audited(tmp_path):
    """Issue 13: the default waits for a file to rest; a half-copied extract (its last row cut inside
    the place-of-service field) is never audited, and a .done marker or --settle 0 takes files at once."""
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    text = SAMPLE.read_text()
    (land / "half.csv").write_text(text[:text.rindex(",11,") + 2])               # cut: "11" arrived as "1"
    (land / "copying.csv.part").write_text(text)
    first = pipeline.run_landing(land, db=db, out=tmp_path / "r1", scope="clinic", data_quality=False)
    info = first["landing"]
    assert first["read"] == 0 and info["files_new"] == []
    assert sorted(info["files_deferred"]) == [str(land / "copying.csv.part"), str(land / "half.csv")]
    assert info["files_ignored"] == []

    (land / "half.csv").write_text(text)                     # the copy finished ...
    (land / "half.csv.done").write_text("")                  # ... and the export says so
    second = pipeline.run_landing(land, db=db, out=tmp_path / "r2", scope="clinic", data_quality=False)
    assert second["landing"]["files_new"] == [str(land / "half.csv")] and second["read"] == 669
    assert second["landing"]["files_deferred"] == [str(land / "copying.csv.part")]

    past = time.time() - 120
    shutil.copy(SAMPLE, land / "later.csv")
    os.utime(land / "later.csv", (past, past))               # cp -p: an old mtime, but ctime says "just now"
    assert landing.scan(db, land, "clinic")["deferred"] == [str(land / "copying.csv.part"), str(land / "later.csv")]
    assert landing.scan(db, land, "clinic", settle_seconds=0)["deferred"] == [str(land / "copying.csv.part")]


def test_a_landing_run_with_new_files_starts_the_quality_worker_before_it_ingests(tmp_path, monkeypatch):
    """Great Expectations imports in its worker while the new files are read (as in a plain audit); a run
    with nothing new starts no worker at all."""
    from claimaudit.quality import runner

    events: list[str] = []
    real_start, real_ingest = runner._start_worker, pipeline.ingest

    def start():
        events.append("worker started")
        return real_start()

    def ingest(*args, **kwargs):
        events.append("ingest")
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(runner, "_start_worker", start)
    monkeypatch.setattr(pipeline, "ingest", ingest)
    land, db = tmp_path / "landing", tmp_path / "w.duckdb"
    land.mkdir()
    shutil.copy(SAMPLE, land / "extract-0601.csv")
    first = pipeline.run_landing(land, db=db, out=tmp_path / "r1", scope="clinic", settle_seconds=0)
    assert events == ["worker started", "ingest"]                 # one worker, taken by the run's DQ step
    assert first["data_quality"]["expectations"] > 0 and runner._warm is None
    events.clear()
    pipeline.run_landing(land, db=db, out=tmp_path / "r2", scope="clinic", settle_seconds=0)
    assert events == []                                           # nothing new: no ingest, no worker
