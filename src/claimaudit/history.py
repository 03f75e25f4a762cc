"""Findings across runs: fingerprints, new / recurring / resolved, and run-to-run diffs.

* Fingerprint = md5(rule_id | claim_id | line_number | related_code): independent of the run id,
  of messages and of reference versions, so the same problem on the same line keeps its identity
  from one run to the next (REF-001 carries its family in related_code).
* Scope: a run is compared with the most recent *completed* run of the same scope in the warehouse.
  The scope is the ``--scope`` label when given; otherwise the set of billing NPIs of the run's lines
  (rendering NPI where billing is missing), i.e. "the same practice". A nightly run over the same
  practice compares with last night; a consultant's run for another client starts a new history.
* Status: ``new`` (not in the previous run), ``recurring`` (also there); ``resolved`` findings are
  those of the previous run whose fingerprint is gone (fixed, or the line no longer billed).
"""

from __future__ import annotations

import duckdb
import polars as pl

FINGERPRINT_SQL = ("md5(rule_id || '|' || coalesce(claim_id, '') || '|' || coalesce(line_number::VARCHAR, '') "
                   "|| '|' || coalesce(related_code, ''))")


def scope_key(con: duckdb.DuckDBPyConnection, run_id: str, label: str | None = None) -> str:
    if label:
        return f"label:{label}"
    npis = con.execute("SELECT string_agg(DISTINCT coalesce(billing_npi, rendering_npi), ',' ORDER BY "
                       "coalesce(billing_npi, rendering_npi)) FROM claim_lines WHERE run_id = ?", [run_id]).fetchall()
    return "npis:" + con.execute("SELECT md5(?)", [npis[0][0] or ""]).fetchall()[0][0][:16]


def record(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """Fingerprint this run's findings and mark them new/recurring against the previous run of its scope."""
    given = con.execute("SELECT scope_key FROM runs WHERE run_id = ?", [run_id]).fetchall()
    label = given[0][0][len("label:"):] if given and (given[0][0] or "").startswith("label:") else None
    key = scope_key(con, run_id, label)
    previous = con.execute("""SELECT run_id FROM runs WHERE scope_key = ? AND status = 'completed' AND run_id <> ?
                              ORDER BY started_at DESC LIMIT 1""", [key, run_id]).fetchall()
    previous_id = previous[0][0] if previous else None
    con.execute(f"UPDATE findings SET fingerprint = {FINGERPRINT_SQL} WHERE run_id = ?", [run_id])
    con.execute("""UPDATE findings SET status = CASE WHEN fingerprint IN (
                       SELECT fingerprint FROM findings WHERE run_id = ?) THEN 'recurring' ELSE 'new' END
                   WHERE run_id = ?""", [previous_id, run_id])
    counts = diff_counts(con, previous_id, run_id) if previous_id else {
        "new": con.execute("SELECT count(*) FROM findings WHERE run_id = ?", [run_id]).fetchall()[0][0],
        "recurring": 0, "resolved": 0}
    con.execute("UPDATE runs SET scope_key = ?, previous_run_id = ?, findings_new = ?, findings_recurring = ?, "
                "findings_resolved = ? WHERE run_id = ?",
                [key, previous_id, counts["new"], counts["recurring"], counts["resolved"], run_id])
    return {"scope": key, "previous_run_id": previous_id, **counts}


def diff_counts(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str) -> dict:
    row = con.execute("""
        WITH a AS (SELECT DISTINCT fingerprint FROM findings WHERE run_id = ?),
             b AS (SELECT DISTINCT fingerprint FROM findings WHERE run_id = ?)
        SELECT (SELECT count(*) FROM b WHERE fingerprint NOT IN (SELECT fingerprint FROM a)),
               (SELECT count(*) FROM b WHERE fingerprint IN (SELECT fingerprint FROM a)),
               (SELECT count(*) FROM a WHERE fingerprint NOT IN (SELECT fingerprint FROM b))""",
                      [run_a, run_b]).fetchall()[0]
    return {"new": row[0], "recurring": row[1], "resolved": row[2]}


def diff(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str) -> pl.DataFrame:
    """Findings that changed from run A to run B: change = new (only in B) or resolved (only in A)."""
    return con.sql("""
        WITH a AS (SELECT * FROM findings WHERE run_id = $a), b AS (SELECT * FROM findings WHERE run_id = $b)
        SELECT 'new' AS change, rule_id, severity, claim_id, line_number, procedure_code, related_code,
               amount_at_risk, message FROM b WHERE fingerprint NOT IN (SELECT fingerprint FROM a)
        UNION ALL
        SELECT 'resolved', rule_id, severity, claim_id, line_number, procedure_code, related_code,
               amount_at_risk, message FROM a WHERE fingerprint NOT IN (SELECT fingerprint FROM b)
        ORDER BY change, rule_id, claim_id, line_number""", params={"a": run_a, "b": run_b}).pl()


def resolved(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The previous run's findings that this run no longer has."""
    prev = con.execute("SELECT previous_run_id FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not prev or not prev[0][0]:
        return pl.DataFrame()
    return diff(con, prev[0][0], run_id).filter(pl.col("change") == "resolved")
