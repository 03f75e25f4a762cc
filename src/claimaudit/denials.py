"""835 remittances in an audit: load them, link remit lines to claim lines, and measure the rules
against what the payer actually did (docs/denials.md).

Each CLP is one adjudication of a claim: by the primary payer, a secondary or tertiary payer, or a
reversal of an earlier payment (CLP02, ``ROLE``). Its lines are matched to the claim's lines in
passes, the strictest first, one-to-one within that CLP (a claim line takes at most one line of
each adjudication, so a secondary payer's remit links to the same line as the primary's):

1. ``code+modifiers+dos+charge``: CLP01 = claim_id, then the same procedure code, the same set of
   modifiers, the same date of service and the same charge;
2. ``code+dos+charge``; 3. ``code+dos``; 4. ``code`` (within the claim).

Identical candidates pair up in order (remit segment order vs line number). Remit lines left over
are reported as unmatched, with the reason (no claim with that patient control number in the run,
or no line of the claim fits), as are remit lines without a procedure code.

A claim line's verdict is its **effective** primary adjudication: the latest primary remit line
(by payment date, then file and segment order) that no later primary remit or reversal supersedes.
It is **denied** when it paid nothing on a positive charge; its denied dollars are the charge.
Secondary and tertiary remits (coordination of benefits) and reversals are counted, never denials.
Adjustments (CAS) are reported by group-reason (``CO-97``) with their dollars; remarks (LQ, MOA)
by code.
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


# CLP02 claim status -> the payer's role in this adjudication (X12 835 claim status codes)
ROLE = """CASE WHEN {status} IN ('1', '19', '4') THEN 'primary'
               WHEN {status} IN ('2', '20') THEN 'secondary'
               WHEN {status} IN ('3', '21') THEN 'tertiary'
               WHEN {status} = '22' THEN 'reversal'
               ELSE 'other' END"""


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
        # one adjudication = one CLP (source_file, clp_seg): pairs are one-to-one within it
        counts[rule] = len(con.execute(f"""
            INSERT INTO remit_matches
            WITH taken AS (SELECT r.source_file, r.clp_seg, r.svc_seg, m.claim_id, m.line_number
                           FROM remit_matches m JOIN rl r USING (source_file, svc_seg) WHERE m.run_id = $run),
                 r AS (SELECT source_file, clp_seg, svc_seg, claim_id, {select} FROM rl
                       WHERE (source_file, svc_seg) NOT IN (SELECT (source_file, svc_seg) FROM taken)),
                 c AS (SELECT a.source_file, a.clp_seg, cl.claim_id, cl.line_number, {select}
                       FROM (SELECT DISTINCT source_file, clp_seg, claim_id FROM r) a JOIN cl USING (claim_id)
                       WHERE (a.source_file, a.clp_seg, cl.claim_id, cl.line_number) NOT IN (
                           SELECT (source_file, clp_seg, claim_id, line_number) FROM taken)),
                 rn AS (SELECT *, row_number() OVER (PARTITION BY source_file, clp_seg, claim_id, {key}
                                                     ORDER BY svc_seg) AS n FROM r),
                 cn AS (SELECT *, row_number() OVER (PARTITION BY source_file, clp_seg, claim_id, {key}
                                                     ORDER BY line_number) AS n FROM c)
            SELECT $run, rn.source_file, rn.svc_seg, cn.claim_id, cn.line_number, '{rule}'
            FROM rn JOIN cn USING (source_file, clp_seg, claim_id, {key}, n)
            RETURNING 1""", {"run": run_id}).fetchall())
    return counts


# every remit line of the run with its role and verdict; a primary remit line is superseded by a
# later primary remit or reversal of the same claim line
VERDICTS = f"""
CREATE OR REPLACE TEMP TABLE remit_verdicts AS
WITH l AS (
    SELECT l.source_file, l.svc_seg, l.charge, l.paid, m.claim_id, m.line_number,
           {ROLE.format(status="c.status")} AS role,
           row_number() OVER (ORDER BY c.payment_date NULLS FIRST, l.source_file, l.svc_seg) AS seq
    FROM remit_lines l JOIN remit_claims c USING (run_id, source_file, clp_seg)
    LEFT JOIN remit_matches m USING (run_id, source_file, svc_seg)
    WHERE l.run_id = $run),
v AS (
    SELECT *, coalesce(claim_id IS NOT NULL AND seq < max(seq) FILTER (WHERE role IN ('primary', 'reversal'))
                       OVER (PARTITION BY claim_id, line_number), false) AS superseded
    FROM l)
SELECT *, role = 'primary' AND NOT superseded AS effective,
       role = 'primary' AND NOT superseded AND coalesce(paid, 0) = 0 AND coalesce(charge, 0) > 0 AS denied
FROM v
"""


ANALYSIS = """
WITH lines AS (SELECT * FROM remit_verdicts),
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
      AS denials_not_predicted_dollars,
  (SELECT count(*) FROM lines WHERE role = 'primary' AND superseded) AS superseded_lines
"""

BY_RULE = """
WITH lines AS (SELECT claim_id, line_number, source_file, svc_seg, denied FROM remit_verdicts
               WHERE effective AND claim_id IS NOT NULL),
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
    con.execute(VERDICTS, {"run": run_id})
    row = con.execute(ANALYSIS, {"run": run_id}).fetchall()[0]
    names = ["remit_lines", "matched", "denied_lines", "denied_dollars", "preventable_dollars",
             "denials_not_predicted", "denials_not_predicted_dollars", "superseded_lines"]
    result = dict(zip(names, row, strict=True))
    result["denied_dollars"] = round(result["denied_dollars"], 2)
    result["preventable_dollars"] = round(result["preventable_dollars"], 2)
    result["denials_not_predicted_dollars"] = round(result["denials_not_predicted_dollars"], 2)
    result["matches_by_rule"] = matches
    result["lines_by_role"] = dict(con.execute(
        "SELECT role, count(*) FROM remit_verdicts GROUP BY 1 ORDER BY 1").fetchall())
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
