"""What a run could not check. Unknown is not clean, and it must also be readable.

Three sources, one vocabulary (a rule *family* and a *reason*):

* REF-001 findings: no complete reference data for the line's date (none loaded, a release with
  part files missing, a truncated file). Family ``ncci_ptp`` or ``mue``, line by line.
* TIME-007 findings: a timed code without minutes, so the time checks of that day were skipped.
  Family ``units_time``, for every line of the day.
* Lines a rule could not judge (``sql/rules/_unchecked.sql`` -> ``unchecked_lines``): a line without
  a provider discipline for COV-001, assistant minutes without total minutes for MOD-005.
* Families a run did not run at all (``--no-data-quality``): ``runs.families_skipped``.

A *scope* is a family (``ncci_ptp``) or a single rule (``MOD-006``).

:func:`causes` groups the line-level truth into one row per cause (family, reason, date range,
lines, dollars) for the CLI, the report and summary.json. :func:`unchecked_sql` is what history
compares with: a finding is new or resolved only when both runs checked its family on its day
(history.py).
"""

from __future__ import annotations

import json

import duckdb

# REF-001's related_code -> what it leaves unchecked (a family, or one rule)
REF_SCOPE = {"ptp": "ncci_ptp", "mue": "mue", "kx": "MOD-006"}
REF_SCOPE_SQL = "CASE related_code WHEN 'ptp' THEN 'ncci_ptp' WHEN 'kx' THEN 'MOD-006' ELSE related_code END"
TIME_UNCHECKED = "timed code without documented minutes: the day's time checks were skipped"


def unchecked_sql(run: str) -> str:
    """(family, patient_id, rendering_npi, date_of_service): the days run ``run`` (a bound parameter
    name like ``$a``) did not check for a scope (family or rule). A reference version covers whole
    dates and a timed code without minutes stops the whole day's time checks, so a day is the unit.
    One row per unchecked line and cause, so a day can repeat: history only asks whether a day is there,
    for the few days it needs (grouping millions of lines into days first cost more than the question)."""
    return f"""
        SELECT {REF_SCOPE_SQL} AS family, patient_id, rendering_npi, date_of_service
        FROM findings WHERE run_id = {run} AND rule_id = 'REF-001'
        UNION ALL
        SELECT 'units_time', patient_id, rendering_npi, date_of_service
        FROM findings WHERE run_id = {run} AND rule_id = 'TIME-007'
        UNION ALL
        SELECT scope, patient_id, rendering_npi, date_of_service FROM unchecked_lines WHERE run_id = {run}"""


def skipped_sql(run: str) -> str:
    """The families run ``run`` did not run at all."""
    return f"""SELECT unnest(from_json(coalesce(families_skipped, '[]'), '["VARCHAR"]')) AS family
               FROM runs WHERE run_id = {run}"""


def causes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """One row per cause: family, reason, first and last date of service, lines, dollars of those lines."""
    # A cause holds each line once (REF-001: one per line and reference; TIME-007: one per timed line;
    # unchecked_lines: one per line and rule), so its lines are counted, not grouped. Only the findings'
    # lines fetch their amount from the run's lines; unchecked_lines carries its own.
    rows = con.execute(f"""
        WITH ref AS (
            SELECT {REF_SCOPE_SQL.replace('related_code', 'f.related_code')} AS family,
                   f.actual AS reason, f.claim_id, f.line_number, f.date_of_service
            FROM findings f WHERE f.run_id = $run AND f.rule_id = 'REF-001'
        ), timed AS (
            SELECT 'units_time' AS family, $time_reason AS reason, f.claim_id, f.line_number, f.date_of_service
            FROM findings f WHERE f.run_id = $run AND f.rule_id = 'TIME-007'
        ), finding_lines AS (
            SELECT u.*, coalesce(l.allowed_amount, l.charge_amount) AS amount
            FROM (SELECT * FROM ref UNION ALL SELECT * FROM timed) u LEFT JOIN claim_lines l
              ON l.run_id = $run AND l.claim_id = u.claim_id AND l.line_number = u.line_number
        ), lines AS (
            SELECT * FROM finding_lines
            UNION ALL
            SELECT scope, reason, claim_id, line_number, date_of_service, line_amount
            FROM unchecked_lines WHERE run_id = $run
        )
        SELECT family, reason, min(date_of_service), max(date_of_service), count(*),
               coalesce(sum(amount), 0)::DOUBLE
        FROM lines GROUP BY ALL ORDER BY 5 DESC, 1, 2""", {"run": run_id, "time_reason": TIME_UNCHECKED}).fetchall()
    out = [{"family": r[0], "reason": r[1], "first_date": str(r[2]) if r[2] else None,
            "last_date": str(r[3]) if r[3] else None, "lines": r[4], "dollars": round(r[5], 2)} for r in rows]
    skipped = con.execute("SELECT coalesce(families_skipped, '[]') FROM runs WHERE run_id = ?", [run_id]).fetchall()
    for family in json.loads(skipped[0][0]) if skipped else []:
        out.append({"family": family, "reason": "not run in this run (--no-data-quality)" if family == "data_quality"
                    else "not run in this run", "first_date": None, "last_date": None, "lines": None, "dollars": None})
    return out


def line(cause: dict) -> str:
    """One cause in one line, for the CLI and notifications."""
    if cause["lines"] is None:
        return f"{cause['family']}: {cause['reason']}"
    dates = cause["first_date"] if cause["first_date"] == cause["last_date"] else \
        f"{cause['first_date']}..{cause['last_date']}"
    return (f"{cause['family']}: {cause['reason']} - DOS {dates}, {cause['lines']:,} line(s), "
            f"${cause['dollars']:,.2f} not verified")
