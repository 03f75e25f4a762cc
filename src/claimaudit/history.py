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
* Like with like: a finding is ``new`` only if the previous run checked its family on its day, and
  ``resolved`` only if this run did (coverage.py: families not run, reference data missing or
  incomplete for the date, timed codes without minutes). Otherwise it is ``not_compared``: a run
  with ``--no-data-quality`` resolves no DQ finding, and a partial reference release resolves no
  PTP finding.
"""

from __future__ import annotations

import duckdb
import polars as pl

from claimaudit.coverage import skipped_sql, unchecked_sql

FINGERPRINT_SQL = ("md5(rule_id || '|' || coalesce(claim_id, '') || '|' || coalesce(line_number::VARCHAR, '') "
                   "|| '|' || coalesce(related_code, ''))")


def scope_key(con: duckdb.DuckDBPyConnection, run_id: str, label: str | None = None) -> str:
    if label:
        return f"label:{label}"
    npis = con.execute("SELECT string_agg(DISTINCT coalesce(billing_npi, rendering_npi), ',' ORDER BY "
                       "coalesce(billing_npi, rendering_npi)) FROM claim_lines WHERE run_id = ?", [run_id]).fetchall()
    return "npis:" + con.execute("SELECT md5(?)", [npis[0][0] or ""]).fetchall()[0][0][:16]


def _unchecked_keys(rows: str, run: str, skipped: str) -> str:
    """The rows of ``rows`` (findings) that run ``run`` did not check: their family was skipped, or
    their family or rule was unchecked on their day. Only the days of ``rows`` are looked up, with
    NULL-safe keys (a day with an unknown patient is that day), so the run's unchecked lines are
    probed, never grouped."""
    return f"""
        WITH keys AS (SELECT family AS scope, patient_id, rendering_npi, date_of_service FROM {rows}
                      UNION SELECT rule_id, patient_id, rendering_npi, date_of_service FROM {rows}),
        hit AS (SELECT DISTINCT k.* FROM keys k JOIN ({unchecked_sql(run)}) u
                  ON u.family = k.scope AND u.patient_id IS NOT DISTINCT FROM k.patient_id
                 AND u.rendering_npi IS NOT DISTINCT FROM k.rendering_npi
                 AND u.date_of_service IS NOT DISTINCT FROM k.date_of_service)
        SELECT r.row_key FROM {rows} r
        WHERE r.family IN (SELECT family FROM {skipped})
           OR (r.family, r.patient_id, r.rendering_npi, r.date_of_service) IN (
               SELECT (scope, patient_id, rendering_npi, date_of_service) FROM hit)
           OR (r.rule_id, r.patient_id, r.rendering_npi, r.date_of_service) IN (
               SELECT (scope, patient_id, rendering_npi, date_of_service) FROM hit)"""


def _compared_sql(sides: tuple[str, ...] = ("later", "earlier")) -> str:
    """Every finding of runs $a (earlier) and $b (later) with its change: new, recurring, resolved or
    not_compared (the other run did not check the finding's family on its day). ``sides``: the later
    run's findings (new, recurring, not_compared), the earlier run's that are gone (resolved,
    not_compared_resolved), or both. Only the findings that are not recurring are looked up in the
    other run's unchecked days: on a nightly run that is a few, against millions of unchecked lines."""
    later = f"""
        SELECT CASE WHEN b.recurring THEN 'recurring'
                    WHEN b.row_key IN ({_unchecked_keys('later_open', '$a', 'sa')}) THEN 'not_compared'
                    ELSE 'new' END AS change, b.* EXCLUDE (recurring, row_key) FROM later b"""
    earlier = f"""
        SELECT CASE WHEN a.row_key IN ({_unchecked_keys('earlier_gone', '$b', 'sb')})
                    THEN 'not_compared_resolved' ELSE 'resolved' END AS change,
               a.* EXCLUDE (row_key) FROM earlier_gone a"""
    parts = {"later": later, "earlier": earlier}
    return f"""
        WITH a AS (SELECT * FROM findings WHERE run_id = $a), b AS (SELECT * FROM findings WHERE run_id = $b),
             sa AS ({skipped_sql('$a')}), sb AS ({skipped_sql('$b')}),
             -- row_key: a row's identity inside this query, so each side is evaluated once (MATERIALIZED)
             later AS MATERIALIZED (SELECT b.*, b.fingerprint IN (SELECT fingerprint FROM a) AS recurring,
                                           row_number() OVER () AS row_key FROM b),
             later_open AS (SELECT * FROM later WHERE recurring IS NOT TRUE),
             earlier_gone AS MATERIALIZED (SELECT a.*, row_number() OVER () AS row_key FROM a
                                           WHERE a.fingerprint NOT IN (SELECT fingerprint FROM b))
        {" UNION ALL ".join(parts[side] for side in sides)}"""


def record(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """Fingerprint this run's findings and mark them new/recurring/not_compared against the previous run
    of its scope."""
    given = con.execute("SELECT scope_key FROM runs WHERE run_id = ?", [run_id]).fetchall()
    label = given[0][0][len("label:"):] if given and (given[0][0] or "").startswith("label:") else None
    key = scope_key(con, run_id, label)
    previous = con.execute("""SELECT run_id FROM runs WHERE scope_key = ? AND status = 'completed' AND run_id <> ?
                              ORDER BY started_at DESC LIMIT 1""", [key, run_id]).fetchall()
    previous_id = previous[0][0] if previous else None
    con.execute(f"UPDATE findings SET fingerprint = {FINGERPRINT_SQL} WHERE run_id = ?", [run_id])
    if previous_id:             # compared once: the statuses and the counts both come from it
        con.execute(f"""CREATE OR REPLACE TEMP TABLE history_compared AS
                        SELECT change, fingerprint FROM ({_compared_sql()})""", {"a": previous_id, "b": run_id})
        con.execute("""UPDATE findings SET status = c.change FROM history_compared c
                       WHERE findings.run_id = ? AND c.change IN ('new', 'recurring', 'not_compared')
                         AND c.fingerprint = findings.fingerprint""", [run_id])
        counts = _counts(con.execute("SELECT change, count(DISTINCT fingerprint) FROM history_compared GROUP BY 1")
                         .fetchall())
        con.execute("DROP TABLE history_compared")
    else:
        con.execute("UPDATE findings SET status = 'new' WHERE run_id = ?", [run_id])
        counts = {"new": con.execute("SELECT count(*) FROM findings WHERE run_id = ?", [run_id]).fetchall()[0][0],
                  "recurring": 0, "resolved": 0, "not_compared": 0}
    con.execute("UPDATE runs SET scope_key = ?, previous_run_id = ?, findings_new = ?, findings_recurring = ?, "
                "findings_resolved = ?, findings_not_compared = ? WHERE run_id = ?",
                [key, previous_id, counts["new"], counts["recurring"], counts["resolved"], counts["not_compared"],
                 run_id])
    return {"scope": key, "previous_run_id": previous_id, **counts}


def diff_counts(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str) -> dict:
    """Counts of distinct fingerprints per change; ``not_compared`` covers both directions."""
    return _counts(con.execute(f"SELECT change, count(DISTINCT fingerprint) FROM ({_compared_sql()}) GROUP BY 1",
                               {"a": run_a, "b": run_b}).fetchall())


def _counts(rows: list[tuple[str, int]]) -> dict:
    rows = dict(rows)
    return {"new": rows.get("new", 0), "recurring": rows.get("recurring", 0), "resolved": rows.get("resolved", 0),
            "not_compared": rows.get("not_compared", 0) + rows.get("not_compared_resolved", 0)}


def diff(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str,
         sides: tuple[str, ...] = ("later", "earlier"), limit: int | None = None) -> pl.DataFrame:
    """Findings that changed from run A to run B: change = new (only in B) or resolved (only in A);
    findings the other run did not check are left out (``diff_counts`` counts them). ``limit``: the
    first that many, in the order below (a report shows a few; a nightly run can resolve a million)."""
    return con.sql(f"""
        SELECT change, rule_id, severity, claim_id, line_number, procedure_code, related_code, amount_at_risk, message
        FROM ({_compared_sql(sides)}) WHERE change IN ('new', 'resolved')
        ORDER BY change, rule_id, claim_id, line_number{" LIMIT $limit" if limit is not None else ""}""",
                   params={"a": run_a, "b": run_b, **({"limit": limit} if limit is not None else {})}).pl()


def resolved(con: duckdb.DuckDBPyConnection, run_id: str, limit: int | None = None) -> pl.DataFrame:
    """The previous run's findings that this run no longer has (and did check): the first ``limit``."""
    prev = con.execute("SELECT previous_run_id, findings_resolved FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not prev or not prev[0][0] or prev[0][1] == 0:     # counted when recorded: nothing to look for
        return pl.DataFrame()
    return diff(con, prev[0][0], run_id, sides=("earlier",), limit=limit)
