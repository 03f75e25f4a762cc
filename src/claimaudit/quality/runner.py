"""Run the data-quality suite for one run and act on it.

* Blocking expectations: the rows they name move from claim_lines to quarantine with reason
  ``dq:<id>``; the run's loaded/quarantined counts move with them, so read = loaded + quarantined.
* Warning expectations: the rows they name are recorded in ``dq_hits``; sql/rules/data_quality.sql
  turns them into DQ-* findings.
* Every expectation's result (success, unexpected count and percent, up to 20 example rows) is
  stored in ``dq_results``; GX Data Docs are built into the run folder (data-docs/index.html).

A run never stops because data is bad; it stops only if the suite itself cannot run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from claimaudit.errors import ClaimAuditError
from claimaudit.resources import resource
from claimaudit.rules.runner import _SAFE_RUN_ID
from claimaudit.warehouse import connect

SUITE = ("expectations", "claim_lines.json")


def suite_path() -> Path:
    override = os.environ.get("CLAIMAUDIT_SUITE")
    return Path(override) if override else resource(*SUITE)


def _validate(db: Path, run_id: str, view: str, docs_dir: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="claimaudit-dq-") as tmp:
        args = {"db": str(db.resolve()), "run_id": run_id, "view": view, "suite": str(suite_path()),
                "docs_dir": str(docs_dir.resolve()) if docs_dir else None, "out": str(Path(tmp) / "out.json")}
        (Path(tmp) / "args.json").write_text(json.dumps(args), encoding="utf-8")
        proc = subprocess.run([sys.executable, "-m", "claimaudit.quality.gx_worker", str(Path(tmp) / "args.json")],
                              capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0 or not Path(args["out"]).exists():
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "nanobind" not in ln
                     and "leaked" not in ln and "skipped remainder" not in ln]
            raise ClaimAuditError(f"the data-quality suite {suite_path()} could not run: "
                                  f"{lines[-1] if lines else 'exit code ' + str(proc.returncode)}")
        return json.loads(Path(args["out"]).read_text(encoding="utf-8"))


def run_quality(db: str | Path, run_id: str, out_dir: str | Path | None = None) -> dict:
    db = Path(db)
    view = f"dq_batch_{run_id.replace('-', '_')}"
    if not _SAFE_RUN_ID.match(run_id):
        raise ValueError(f"unsafe run id {run_id!r}")
    with connect(db) as con:    # GX reads a plain table name; a view per run keeps runs apart
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM claim_lines WHERE run_id = '{run_id}'")
    started = time.perf_counter()
    try:
        output = _validate(db, run_id, view, Path(out_dir) / "data-docs" if out_dir else None)
    finally:
        with connect(db) as con:
            con.execute(f"DROP VIEW IF EXISTS {view}")
    results = output["results"]
    broken = [r for r in results if r["error"]]
    if broken:
        raise ClaimAuditError(f"the data-quality suite could not evaluate {broken[0]['id']}: {broken[0]['error']}")
    flagged = 0
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
            flagged += rows if r["level"] != "blocking" else 0
        quarantined = _quarantine_blocking(con, run_id)
        con.execute("COMMIT")
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


def _quarantine_blocking(con, run_id: str) -> int:
    """Move the lines named by blocking expectations into quarantine (first expectation wins)."""
    con.execute("""CREATE OR REPLACE TEMP TABLE blocked AS
                   SELECT claim_id, line_number, min(expectation_id) AS expectation_id
                   FROM dq_hits WHERE run_id = ? AND level = 'blocking' GROUP BY ALL""", [run_id])
    n = con.execute("SELECT count(*) FROM blocked").fetchall()[0][0]
    if not n:
        return 0
    con.execute("""INSERT INTO quarantine
                   SELECT l.run_id, l.source_file, l.source_row, 'dq:' || b.expectation_id,
                          to_json(struct_pack(claim_id := l.claim_id, line_number := l.line_number,
                                  patient_id := l.patient_id, rendering_npi := l.rendering_npi, payer := l.payer,
                                  date_of_service := l.date_of_service, procedure_code := l.procedure_code,
                                  modifiers := l.modifiers, units := l.units, minutes := l.minutes,
                                  charge_amount := l.charge_amount))::VARCHAR
                   FROM claim_lines l JOIN blocked b USING (claim_id, line_number)
                   WHERE l.run_id = ?""", [run_id])
    con.execute("""DELETE FROM claim_lines WHERE run_id = ?
                   AND (claim_id, line_number) IN (SELECT (claim_id, line_number) FROM blocked)""", [run_id])
    con.execute("UPDATE runs SET rows_loaded = rows_loaded - ?, rows_quarantined = rows_quarantined + ? "
                "WHERE run_id = ?", [n, n, run_id])
    return n
