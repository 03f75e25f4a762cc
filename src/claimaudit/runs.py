"""The life of a run in the warehouse: running -> completed, or failed, or abandoned.

* ``completed`` is written last, after every output file (outputs.py).
* A failure the process sees (bad input, a full disk, Ctrl-C, SIGTERM) marks the run ``failed``
  with its one-line cause (:func:`fail`).
* A process that died without a word (kill -9, power loss) leaves its run ``running``. Whoever next
  takes the warehouse lock knows no run is alive, so every ``running`` run is dead: it is marked
  ``abandoned`` (:func:`recover`, called by locking.warehouse_lock).

A run that did not complete keeps its ``runs`` row and its ``run_inputs`` (what was attempted, with
hashes) and nothing else: its partial findings, lines, quarantine, data-quality rows, remittances,
raw input tables, ``dq_batch_*`` views and temporary files are removed (:func:`cleanup`), so it can
never be a history baseline or show claim data. Landing-folder state (ledger, pending days) is
untouched: the next landing run audits what the dead one left pending.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import duckdb

from claimaudit import workdir
from claimaudit.errors import ClaimAuditError

RUN_TABLES = ("findings", "claim_lines", "quarantine", "dq_results", "dq_hits", "remit_claims", "remit_lines",
              "remit_adjustments", "remit_remarks", "remit_plb", "remit_matches", "unchecked_lines", "therapy_ytd")
_VIEW = re.compile(r"^dq_batch_[A-Za-z0-9_]+$")


def cleanup(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Remove everything a run that did not complete left behind (one transaction)."""
    from claimaudit.ingest.load import drop_raw

    con.execute("BEGIN")
    try:
        for table in RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        drop_raw(con, run_id)
        view = f"dq_batch_{run_id.replace('-', '_')}"
        if _VIEW.match(view):
            con.execute(f"DROP VIEW IF EXISTS {view}")
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):   # never hide the failure that got us here
            con.execute("ROLLBACK")
        raise
    out = con.execute("SELECT out_dir FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if out and out[0][0]:
        for partial in Path(out[0][0]).glob("*.partial-*"):       # outputs cut off mid-write
            with contextlib.suppress(OSError):
                partial.unlink()


def fail(db: str | Path, run_id: str, reason: str) -> bool:
    """Mark a run failed with its cause and clean up after it. False if the warehouse itself cannot be
    written (e.g. its disk is full): the run then stays ``running`` and the next run marks it abandoned."""
    from claimaudit.warehouse import connect

    try:
        with connect(db) as con:
            con.execute("UPDATE runs SET status = 'failed', finished_at = now(), failure = ? "
                        "WHERE run_id = ? AND status = 'running'", [reason[:1000], run_id])
            cleanup(con, run_id)
        return True
    except (ClaimAuditError, duckdb.Error, OSError):
        return False


def recover(db: str | Path) -> list[str]:
    """Mark the runs left ``running`` by a dead process abandoned, and clean up after them and after
    any dead process (stale views, raw tables, temporary folders). Only while holding the warehouse lock."""
    from claimaudit.ingest.load import drop_raw
    from claimaudit.warehouse import connect

    workdir.sweep(db)
    if not Path(db).exists():
        return []
    with connect(db) as con:
        dead = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE status = 'running' ORDER BY run_id").fetchall()]
        for run_id in dead:
            con.execute("UPDATE runs SET status = 'abandoned', finished_at = now(), failure = ? WHERE run_id = ?",
                        ["the process stopped before the run completed (killed, or the machine went down)", run_id])
            cleanup(con, run_id)
        for (view,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                   "AND view_name LIKE 'dq\\_batch\\_%' ESCAPE '\\'").fetchall():
            if _VIEW.match(view):
                con.execute(f"DROP VIEW IF EXISTS {view}")
        drop_raw(con)                      # no run is alive: every raw table is left over
    return dead


def mark_skipped(con: duckdb.DuckDBPyConnection, run_id: str, families: list[str]) -> None:
    con.execute("UPDATE runs SET families_skipped = ? WHERE run_id = ?", [json.dumps(sorted(families)), run_id])


OUTPUT_FILES = ("findings.csv", "findings.parquet", "quarantine.csv", "report.html", "report.xlsx", "summary.json")


def purge(db: str | Path, *, scope: str | None = None, run_ids: list[str] | None = None, before=None,
          outputs: bool = False, compact: bool = True) -> dict:
    """Remove a client's data from the warehouse (docs/security.md): every run of ``scope`` (a --scope
    label), the named runs, or the runs started before ``before``, with everything they hold; for a
    scope also its landing ledger. ``outputs``: their run folders' files too. ``compact``: rewrite the
    warehouse file so deleted rows do not linger in its free blocks. Call while holding the lock."""
    from claimaudit.warehouse import connect

    if not Path(db).exists():
        return {"runs": 0, "rows": 0, "folders": 0, "compacted": False}
    with connect(db) as con:
        con.execute("CREATE OR REPLACE TEMP TABLE purge_runs (run_id VARCHAR)")
        if scope:
            con.execute("INSERT INTO purge_runs SELECT run_id FROM runs WHERE scope_key = ?", [f"label:{scope}"])
        if run_ids:
            con.executemany("INSERT INTO purge_runs SELECT run_id FROM runs WHERE run_id = ?", [[r] for r in run_ids])
        if before is not None:
            con.execute("INSERT INTO purge_runs SELECT run_id FROM runs WHERE started_at < ?", [before])
        doomed = [r[0] for r in con.execute("SELECT DISTINCT run_id FROM purge_runs").fetchall()]
        folders = [Path(r[0]) for r in con.execute(
            "SELECT DISTINCT out_dir FROM runs WHERE run_id IN (SELECT run_id FROM purge_runs) AND out_dir IS NOT NULL"
        ).fetchall()]
        rows = 0
        con.execute("BEGIN")
        for run_id in doomed:
            cleanup_rows = 0
            for table in (*RUN_TABLES, "run_inputs", "ingest_gaps"):
                cleanup_rows += len(con.execute(f"DELETE FROM {table} WHERE run_id = ? RETURNING 1", [run_id]).fetchall())
            rows += cleanup_rows
        if scope:
            for table in ("ledger_lines", "pending_days", "landing_files"):
                rows += len(con.execute(f"DELETE FROM {table} WHERE scope_key = ? RETURNING 1",
                                        [f"label:{scope}"]).fetchall())
        con.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM purge_runs)")
        con.execute("COMMIT")
        from claimaudit.ingest.load import drop_raw

        for run_id in doomed:
            drop_raw(con, run_id)
    removed = 0
    if outputs:
        for folder in folders:
            for name in OUTPUT_FILES:
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
                    removed += 1
            import shutil

            shutil.rmtree(folder / "data-docs", ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
    if compact and doomed:
        _compact(Path(db))
    return {"runs": len(doomed), "rows": rows, "files": removed, "compacted": bool(compact and doomed)}


def _compact(db: Path) -> None:
    """Rewrite the warehouse into a new file and swap it in: DuckDB reuses the blocks of deleted rows
    but does not erase them, so purged claim data could otherwise still be read from the file."""
    import os

    fresh = db.with_name(db.name + ".compact")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    try:
        con.execute("ATTACH ? AS fresh", [str(fresh)])
        con.execute("COPY FROM DATABASE " + _catalog(con, db) + " TO fresh")
        con.execute("DETACH fresh")
    finally:
        con.close()
    os.replace(fresh, db)
    Path(str(db) + ".wal").unlink(missing_ok=True)


def _catalog(con: duckdb.DuckDBPyConnection, db: Path) -> str:
    name = con.execute("SELECT current_database()").fetchall()[0][0]
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ClaimAuditError(f"{db}: cannot compact a warehouse whose catalog is named {name!r}")
    return name
