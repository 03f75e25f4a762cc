"""835 remittances in an audit: load them, link remit lines to claim lines, and measure the rules
against what the payer actually did (docs/denials.md).

Matching, in passes, each one-to-one (a claim line takes at most one remit line), the strictest first:

1. ``code+modifiers+dos+charge``: CLP01 = claim_id, then the same procedure code, the same set of
   modifiers, the same date of service and the same charge;
2. ``code+dos+charge``; 3. ``code+dos``; 4. ``code`` (within the claim).

Identical candidates pair up in order (remit segment order vs line number). Remit lines left over
are reported as unmatched, with the reason (no claim with that patient control number in the run,
or no line of the claim fits), as are remit lines without a procedure code.

A remit line counts as **denied** when it was paid nothing on a positive charge. Its denied dollars
are the charge. Adjustments (CAS) are reported by group-reason (``CO-97``) with their dollars;
remarks (LQ, MOA) by code.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from claimaudit.x12.remits835 import read_835

PASSES = [
    ("code+modifiers+dos+charge", ["procedure_code", "list_sort(modifiers)", "service_date", "charge"]),
    ("code+dos+charge", ["procedure_code", "service_date", "charge"]),
    ("code+dos", ["procedure_code", "service_date"]),
    ("code", ["procedure_code"]),
]


def load(con: duckdb.DuckDBPyConnection, run_id: str, path: Path, source: str) -> dict:
    """Read one 835 file into the remit tables of the run; returns counts and warnings."""
    tables = read_835(path)
    for name in ("claims", "lines", "adjustments", "remarks", "plb"):
        frame = tables[name]  # noqa: F841 (queried by name)
        con.execute(f"INSERT INTO remit_{name} BY NAME SELECT ? AS run_id, ? AS source_file, * FROM frame",
                    [run_id, source])
    return {"claims": tables["claims"].height, "lines": tables["lines"].height,
            "adjustments": tables["adjustments"].height, "warnings": tables["warnings"],
            "lines_without_code": tables["lines"]["issue"].drop_nulls().len()}


def link(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    con.execute("DELETE FROM remit_matches WHERE run_id = ?", [run_id])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE rl AS
        SELECT l.*, c.patient_control_number AS claim_id FROM remit_lines l
        JOIN remit_claims c USING (run_id, source_file, clp_seg)
        WHERE l.run_id = ? AND l.procedure_code IS NOT NULL""", [run_id])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cl AS
        SELECT claim_id, line_number, procedure_code, modifiers, date_of_service AS service_date,
               charge_amount AS charge FROM claim_lines WHERE run_id = ?""", [run_id])
    counts = {}
    for rule, keys in PASSES:                       # four set-based passes, strictest first
        select = ", ".join(f"{k} AS k{i}" for i, k in enumerate(keys))
        key = ", ".join(f"k{i}" for i in range(len(keys)))
        counts[rule] = len(con.execute(f"""
            INSERT INTO remit_matches
            WITH r AS (SELECT source_file, svc_seg, claim_id, {select} FROM rl
                       WHERE (source_file, svc_seg) NOT IN (
                           SELECT (source_file, svc_seg) FROM remit_matches WHERE run_id = $run)),
                 c AS (SELECT claim_id, line_number, {select} FROM cl
                       WHERE (claim_id, line_number) NOT IN (
                           SELECT (claim_id, line_number) FROM remit_matches WHERE run_id = $run)),
                 rn AS (SELECT *, row_number() OVER (PARTITION BY claim_id, {key} ORDER BY source_file, svc_seg) AS n
                        FROM r),
                 cn AS (SELECT *, row_number() OVER (PARTITION BY claim_id, {key} ORDER BY line_number) AS n FROM c)
            SELECT $run, rn.source_file, rn.svc_seg, cn.claim_id, cn.line_number, '{rule}'
            FROM rn JOIN cn USING (claim_id, {key}, n)
            RETURNING 1""", {"run": run_id}).fetchall())
    return counts


ANALYSIS = """
WITH lines AS (
    SELECT l.run_id, l.source_file, l.svc_seg, l.charge, l.paid,
           (coalesce(l.paid, 0) = 0 AND coalesce(l.charge, 0) > 0) AS denied,
           m.claim_id, m.line_number
    FROM remit_lines l
    LEFT JOIN remit_matches m USING (run_id, source_file, svc_seg)
    WHERE l.run_id = $run),
finding_lines AS (
    SELECT DISTINCT claim_id, line_number FROM findings WHERE run_id = $run AND severity IN ('error', 'warning'))
SELECT
  (SELECT count(*) FROM lines) AS remit_lines,
  (SELECT count(*) FROM lines WHERE claim_id IS NOT NULL) AS matched,
  (SELECT count(*) FROM lines WHERE denied) AS denied_lines,
  (SELECT coalesce(sum(charge), 0)::DOUBLE FROM lines WHERE denied) AS denied_dollars,
  (SELECT coalesce(sum(l.charge), 0)::DOUBLE FROM lines l WHERE l.denied AND EXISTS (
       SELECT 1 FROM finding_lines f WHERE f.claim_id = l.claim_id AND f.line_number = l.line_number))
      AS preventable_dollars,
  (SELECT count(*) FROM lines l WHERE l.denied AND l.claim_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM finding_lines f WHERE f.claim_id = l.claim_id AND f.line_number = l.line_number))
      AS denials_not_predicted,
  (SELECT coalesce(sum(l.charge), 0)::DOUBLE FROM lines l WHERE l.denied AND l.claim_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM finding_lines f WHERE f.claim_id = l.claim_id AND f.line_number = l.line_number))
      AS denials_not_predicted_dollars
"""

BY_RULE = """
WITH lines AS (
    SELECT m.claim_id, m.line_number, l.source_file, l.svc_seg,
           (coalesce(l.paid, 0) = 0 AND coalesce(l.charge, 0) > 0) AS denied
    FROM remit_matches m JOIN remit_lines l USING (run_id, source_file, svc_seg) WHERE m.run_id = $run),
adj AS (SELECT source_file, svc_seg, "group" || '-' || reason AS carc FROM remit_adjustments
        WHERE run_id = $run AND level = 'line'),
f AS (SELECT rule_id, claim_id, line_number, regexp_extract(predicted_carc, '^([A-Z]{2}-[A-Z0-9]+)', 1) AS predicted
      FROM findings WHERE run_id = $run AND severity IN ('error', 'warning'))
SELECT f.rule_id,
       count(*) AS findings_with_remit,
       count(*) FILTER (WHERE l.denied) AS denied,
       count(*) FILTER (WHERE l.denied AND EXISTS (
           SELECT 1 FROM adj a WHERE a.source_file = l.source_file AND a.svc_seg = l.svc_seg AND a.carc = f.predicted))
           AS denied_as_predicted
FROM f JOIN lines l USING (claim_id, line_number)
GROUP BY f.rule_id ORDER BY f.rule_id
"""


def analyse(con: duckdb.DuckDBPyConnection, run_id: str) -> dict | None:
    """The run's denial analysis (None when the run has no 835 input)."""
    if not con.execute("SELECT count(*) FROM remit_claims WHERE run_id = ?", [run_id]).fetchall()[0][0]:
        return None
    matches = link(con, run_id)
    row = con.execute(ANALYSIS, {"run": run_id}).fetchall()[0]
    names = ["remit_lines", "matched", "denied_lines", "denied_dollars", "preventable_dollars",
             "denials_not_predicted", "denials_not_predicted_dollars"]
    result = dict(zip(names, row, strict=True))
    result["denied_dollars"] = round(result["denied_dollars"], 2)
    result["preventable_dollars"] = round(result["preventable_dollars"], 2)
    result["denials_not_predicted_dollars"] = round(result["denials_not_predicted_dollars"], 2)
    result["matches_by_rule"] = matches
    result["unmatched"] = dict(con.execute("""
        SELECT CASE WHEN l.procedure_code IS NULL THEN 'no procedure code in SVC'
                    WHEN c.patient_control_number NOT IN (SELECT claim_id FROM claim_lines WHERE run_id = $run)
                         THEN 'no claim with this patient control number in the run'
                    ELSE 'no line of the claim fits' END AS why, count(*)
        FROM remit_lines l JOIN remit_claims c USING (run_id, source_file, clp_seg)
        WHERE l.run_id = $run AND (l.source_file, l.svc_seg) NOT IN (
            SELECT (source_file, svc_seg) FROM remit_matches WHERE run_id = $run)
        GROUP BY 1 ORDER BY 1""", {"run": run_id}).fetchall())
    result["adjustments_by_carc"] = [
        {"carc": c, "level": lv, "adjustments": n, "dollars": float(d)}
        for c, lv, n, d in con.execute("""
            SELECT "group" || '-' || reason, level, count(*), coalesce(sum(amount), 0)
            FROM remit_adjustments WHERE run_id = ? GROUP BY 1, 2 ORDER BY 4 DESC, 1""", [run_id]).fetchall()]
    result["remarks_by_code"] = dict(con.execute(
        "SELECT code, count(*) FROM remit_remarks WHERE run_id = ? GROUP BY 1 ORDER BY 2 DESC, 1", [run_id]).fetchall())
    result["rules"] = [
        {"rule_id": r, "findings_with_remit": n, "denied": d, "denied_as_predicted": p,
         "precision": round(p / n, 3) if n else None}
        for r, n, d, p in con.execute(BY_RULE, {"run": run_id}).fetchall()]
    return result
