"""Run the data-quality suite for one run and act on it.

* Blocking expectations: the rows they name move from claim_lines to quarantine with reason
  ``dq:<id>``; the run's loaded/quarantined counts move with them, so read = loaded + quarantined.
* Warning expectations: the rows they name are recorded in ``dq_hits``; sql/rules/data_quality.sql
  turns them into DQ-* findings.
* Every expectation's result (success, unexpected count and percent, up to 20 example rows) is
  stored in ``dq_results``; the run folder's data-docs/index.html shows them offline (report/data_docs.py).

A run never stops because data is bad; it stops only if the suite itself cannot run.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from claimaudit import workdir
from claimaudit.errors import ClaimAuditError, scrub
from claimaudit.resources import resource

# (DuckDB and the warehouse are imported where they are used: the command line starts the worker below
# before it imports them, so Great Expectations' import begins as early as it can)

SUITE = ("expectations", "claim_lines.json")


def suite_path() -> Path:
    override = os.environ.get("CLAIMAUDIT_SUITE")
    return Path(override) if override else resource(*SUITE)


_warm: subprocess.Popen | None = None       # a worker started ahead, not yet given a run


def _start_worker() -> subprocess.Popen:
    """A GX worker process: it imports Great Expectations (~2-6 s) and builds the suite at once, then
    waits on its stdin for the path of its arguments file (which names the warehouse and the run). It
    dies with this process (PR_SET_PDEATHSIG), and ends quietly when its stdin closes unused."""
    return subprocess.Popen([sys.executable, "-m", "claimaudit.quality.gx_worker",
                             "--parent", str(os.getpid()), "--suite", str(suite_path())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def started_ahead(enabled: bool = True) -> Iterator[None]:
    """A worker started now (when ``enabled``), so its import overlaps whatever comes before the
    data-quality step (the command line's own imports, the ingest); ``_validate`` takes it. Stopped on
    the way out if no run took it (a bad input, a run that failed before its data-quality step). Blocks
    nest: an inner one keeps the outer one's worker, and stops it too if no run took it. Enter it on the
    thread that lives as long as the run (the worker dies with the thread that started it)."""
    global _warm
    if enabled and _warm is None:
        _warm = _start_worker()
    try:
        yield
    finally:
        proc = _take_prestarted()
        if proc is not None:
            proc.kill()
            proc.communicate()


def _take_prestarted() -> subprocess.Popen | None:
    global _warm
    proc, _warm = _warm, None
    return proc


def _hand_over(proc: subprocess.Popen, args_path: Path) -> str:
    """Give the worker its arguments file and wait for it; returns its stderr."""
    _, stderr = proc.communicate(str(args_path) + "\n", timeout=3600)
    return stderr


def _validate(db: Path, run_id: str, view: str) -> dict:
    """Run the suite in the GX worker process. Its files (claim ids and NPIs in the results) live in a
    0700 folder of the warehouse's work folder, removed on every way out; the worker dies with us."""
    from claimaudit.warehouse import memory_limit

    with workdir.private_dir(db, "dq") as tmp:
        args = {"db": str(db.resolve()), "run_id": run_id, "view": view, "suite": str(suite_path()),
                "out": str(Path(tmp) / "out.json"),
                "memory_limit": memory_limit(), "spill": str(Path(tmp) / "spill"), "handed_over_at": time.time()}
        (Path(tmp) / "args.json").write_text(json.dumps(args), encoding="utf-8")
        # the worker is killed on any exception here (Ctrl-C, SIGTERM); the worker itself asks the
        # kernel to kill it when this process dies (PR_SET_PDEATHSIG), e.g. on kill -9
        from claimaudit.pipeline import _crash_point

        proc = _take_prestarted()
        if proc is None or proc.poll() is not None:
            proc = _start_worker()
        try:
            _crash_point("data-quality-started")
            stderr = _hand_over(proc, Path(tmp) / "args.json")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0 or not Path(args["out"]).exists():
            lines = [ln for ln in stderr.splitlines() if ln.strip() and "nanobind" not in ln
                     and "leaked" not in ln and "skipped remainder" not in ln]
            raise ClaimAuditError(f"the data-quality suite {suite_path()} could not run: "
                                  f"{scrub(lines[-1]) if lines else 'exit code ' + str(proc.returncode)}")
        return json.loads(Path(args["out"]).read_text(encoding="utf-8"))


def run_quality(db: str | Path, run_id: str, out_dir: str | Path | None = None) -> dict:
    from claimaudit.rules.runner import _SAFE_RUN_ID
    from claimaudit.warehouse import connect

    db = Path(db)
    view = f"dq_batch_{run_id.replace('-', '_')}"
    if not _SAFE_RUN_ID.match(run_id):
        raise ValueError(f"unsafe run id {run_id!r}")
    with connect(db) as con:    # GX reads a plain table name; a view per run keeps runs apart
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM claim_lines WHERE run_id = '{run_id}'")
    started = time.perf_counter()
    try:
        output = _validate(db, run_id, view)          # results only: the offline page is ours (below)
    finally:
        with connect(db) as con:
            con.execute(f"DROP VIEW IF EXISTS {view}")
    results = output["results"]
    broken = [r for r in results if r["error"]]
    if broken:
        raise ClaimAuditError(f"the data-quality suite could not evaluate {broken[0]['id']}: {scrub(broken[0]['error'])}")
    flagged, acted = 0, {}
    with connect(db) as con:
        lines = con.execute("SELECT count(*) FROM claim_lines WHERE run_id = ?", [run_id]).fetchall()[0][0]
        for r in results:     # row-query expectations report a count only
            if r["unexpected_percent"] is None:
                r["unexpected_percent"] = round(100.0 * r["unexpected_count"] / lines, 6) if lines else 0.0
        con.execute("BEGIN")
        con.execute("DELETE FROM dq_results WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM dq_hits WHERE run_id = ?", [run_id])
        con.execute(f"CREATE OR REPLACE TEMP VIEW run_lines AS SELECT * FROM claim_lines WHERE run_id = '{run_id}'")
        for r in results:
            rows = 0
            if not r["success"] and r["unexpected_count"]:
                query = r["index_query"]
                if r["type"] == "unexpected_rows_expectation":
                    query = r["kwargs"]["unexpected_rows_query"].replace("{batch}", "run_lines").replace("{{", "{") \
                        .replace("}}", "}")
                elif query:
                    query = query.replace(view, "run_lines")
                if query and "$" not in query:
                    rows = _record_hits(con, run_id, r, query)
                    examples = con.sql(f"SELECT * FROM ({query}) LIMIT 20").pl()
                    r["examples"] = json.loads(examples.write_json()) if examples.height else r["examples"]
            con.execute("INSERT INTO dq_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [run_id, r["id"], r["level"], r["type"], r["description"], r["action"], r["success"],
                         r["unexpected_count"], r["unexpected_percent"], json.dumps(r["examples"], default=str), rows])
            acted[r["id"]] = rows
            flagged += rows if r["level"] != "blocking" else 0
        quarantined = _quarantine_blocking(con, run_id, {r["id"]: r["quarantine_reason"] for r in results
                                                         if r.get("quarantine_reason")})
        con.execute("COMMIT")
    if out_dir:
        from claimaudit.report import data_docs

        data_docs.render(Path(out_dir) / "data-docs" / "index.html", run_id=run_id,
                         suite=json.loads(suite_path().read_text(encoding="utf-8")), results=results,
                         rows_acted=acted, lines=lines)
    seconds = output["seconds"]
    seconds["step"] = round(time.perf_counter() - started, 3)
    failed = [r["id"] for r in results if not r["success"]]
    return {"expectations": len(results), "failed": failed, "rows_quarantined": quarantined,
            "rows_flagged": flagged, "seconds": seconds,
            "data_docs": str(Path(out_dir) / "data-docs" / "index.html") if out_dir else None}


def _record_hits(con, run_id: str, result: dict, query: str) -> int:
    """Rows the expectation names -> dq_hits (claim_id, line_number) for this run."""
    before = con.execute("SELECT count(*) FROM dq_hits WHERE run_id = ?", [run_id]).fetchall()[0][0]
    con.execute(f"""INSERT INTO dq_hits
                    SELECT DISTINCT ?, ?, ?, h.claim_id, h.line_number
                    FROM ({query}) h""", [run_id, result["id"], result["level"]])
    after = con.execute("SELECT count(*) FROM dq_hits WHERE run_id = ?", [run_id]).fetchall()[0][0]
    return after - before


def _quarantine_blocking(con, run_id: str, reasons: dict[str, str]) -> int:
    """Move the lines named by blocking expectations into quarantine (first expectation wins).

    The quarantine row keeps the line's original fields, read back from the run's raw table
    (ingest/load.py); a ledger line loaded by an earlier run has none left and keeps its loaded
    fields instead. The reason is the expectation's ``quarantine_reason`` (the ingest vocabulary)
    or ``dq:<id>``. The run's and the input files' counts move with the lines."""
    from claimaudit.ingest.load import original_record_sql, raw_files
    from claimaudit.ingest.readers import used

    con.execute("CREATE OR REPLACE TEMP TABLE dq_reasons (expectation_id VARCHAR, reason VARCHAR)")
    con.executemany("INSERT INTO dq_reasons VALUES (?, ?)", [[k, v] for k, v in reasons.items()])
    con.execute("""CREATE OR REPLACE TEMP TABLE blocked AS
                   SELECT h.claim_id, h.line_number, min(h.expectation_id) AS expectation_id,
                          coalesce(any_value(r.reason), 'dq:' || min(h.expectation_id)) AS reason
                   FROM dq_hits h LEFT JOIN dq_reasons r ON r.expectation_id = h.expectation_id
                   WHERE h.run_id = ? AND h.level = 'blocking' GROUP BY h.claim_id, h.line_number""", [run_id])
    n = con.execute("SELECT count(*) FROM blocked").fetchall()[0][0]
    if not n:
        return 0
    con.execute("""CREATE OR REPLACE TEMP TABLE blocked_lines AS
                   SELECT l.run_id, l.source_file, l.source_row, b.reason, NULL::VARCHAR AS record,
                          to_json(struct_pack(claim_id := l.claim_id, line_number := l.line_number,
                                  patient_id := l.patient_id, rendering_npi := l.rendering_npi, payer := l.payer,
                                  date_of_service := l.date_of_service, procedure_code := l.procedure_code,
                                  modifiers := l.modifiers, units := l.units, minutes := l.minutes,
                                  charge_amount := l.charge_amount))::VARCHAR AS loaded_fields
                   FROM claim_lines l JOIN blocked b USING (claim_id, line_number)
                   WHERE l.run_id = ?""", [run_id])
    for raw in raw_files(con, run_id):
        sql, params = original_record_sql(raw, "SELECT source_row FROM blocked_lines WHERE source_file = $source")
        update = f"""UPDATE blocked_lines SET record = o.record FROM ({sql}) o
                     WHERE blocked_lines.source_file = $source AND blocked_lines.source_row = o.src_row"""
        con.execute(update, used(update, {**params, "run_id": run_id, "source": raw["source_file"]}))
    con.execute("""INSERT INTO quarantine SELECT run_id, source_file, source_row, reason,
                                                  coalesce(record, loaded_fields) FROM blocked_lines""")
    con.execute("""DELETE FROM claim_lines WHERE run_id = ?
                   AND (claim_id, line_number) IN (SELECT (claim_id, line_number) FROM blocked)""", [run_id])
    con.execute("UPDATE runs SET rows_loaded = rows_loaded - ?, rows_quarantined = rows_quarantined + ? "
                "WHERE run_id = ?", [n, n, run_id])
    con.execute("""UPDATE run_inputs SET rows_loaded = rows_loaded - b.n, rows_quarantined = rows_quarantined + b.n
                   FROM (SELECT source_file, count(*) AS n FROM blocked_lines GROUP BY 1) b
                   WHERE run_inputs.run_id = ? AND run_inputs.source_file = b.source_file""", [run_id])
    return n
