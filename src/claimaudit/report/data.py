"""Everything a report shows, as small frames queried from the warehouse (aggregates, not rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

TABLE_CAP = 2000          # findings rows embedded in report.html; the full list is in findings.parquet
RESOLVED_SHOWN = 50       # resolved findings listed in report.html (`claimaudit diff` lists them all)


@dataclass
class ReportData:
    run: dict
    summary: dict
    by_rule: pl.DataFrame
    by_family: pl.DataFrame
    by_provider: pl.DataFrame
    by_payer: pl.DataFrame
    by_code: pl.DataFrame
    code_pairs: pl.DataFrame
    unchecked: pl.DataFrame
    data_quality: pl.DataFrame
    trend: pl.DataFrame
    findings: pl.DataFrame                       # capped, highest dollars first
    findings_total: int
    resolved: pl.DataFrame = field(default_factory=pl.DataFrame)


def _q(con: duckdb.DuckDBPyConnection, sql: str, run_id: str) -> pl.DataFrame:
    return con.sql(sql, params={"run": run_id}).pl()


def rule_name() -> pl.Expr:
    """Each finding's rule name from the catalogue ("" for an id it does not list)."""
    from claimaudit.rules import catalogue

    return pl.col("rule_id").replace_strict(catalogue.names(), default="", return_dtype=pl.String)


_AT_RISK = "coalesce(sum(amount_at_risk) FILTER (WHERE severity = 'error'), 0)::DOUBLE AS dollars_at_risk"


def collect(con: duckdb.DuckDBPyConnection, run_id: str, summary: dict) -> ReportData:
    from claimaudit import history

    run = con.sql("SELECT * FROM runs WHERE run_id = $run", params={"run": run_id}).pl().to_dicts()[0]
    by_rule = _q(con, f"""SELECT rule_id, family, any_value(severity) AS severity, count(*) AS findings, {_AT_RISK},
                          count(*) FILTER (WHERE status = 'new') AS new
                          FROM findings WHERE run_id = $run GROUP BY ALL ORDER BY family, rule_id""", run_id)
    names = rule_name()
    by_rule = by_rule.with_columns(names.alias("name"),
                                   pl.when(names != "").then(pl.col("rule_id") + " " + names)
                                   .otherwise(pl.col("rule_id")).alias("rule"))
    by_family = _q(con, f"""SELECT family, count(*) AS findings, {_AT_RISK},
                            count(*) FILTER (WHERE severity = 'error') AS errors
                            FROM findings WHERE run_id = $run GROUP BY ALL ORDER BY dollars_at_risk DESC, family""",
                   run_id)
    # only the payer is not on the finding: provider and code never join the run's lines (~0.4 s each at 10M)
    with_payer = """FROM findings f LEFT JOIN claim_lines l
                    ON l.run_id = f.run_id AND l.claim_id = f.claim_id AND l.line_number = f.line_number
                    WHERE f.run_id = $run"""
    alone = "FROM findings f WHERE f.run_id = $run"
    dims = {}
    for name, col, source in (("provider", "f.rendering_npi", alone),
                              ("payer", "coalesce(l.payer, '(none)')", with_payer),
                              ("code", "f.procedure_code", alone)):
        dims[name] = _q(con, f"""SELECT {col} AS {name}, count(*) AS findings,
                                 count(*) FILTER (WHERE f.severity = 'error') AS errors,
                                 coalesce(sum(f.amount_at_risk) FILTER (WHERE f.severity = 'error'), 0)::DOUBLE
                                     AS dollars_at_risk
                                 {source} GROUP BY ALL ORDER BY dollars_at_risk DESC, findings DESC, {name}""",
                        run_id)
    code_pairs = _q(con, f"""SELECT related_code AS column_1, procedure_code AS column_2, rule_id, count(*) AS findings,
                             {_AT_RISK} FROM findings WHERE run_id = $run AND family = 'ncci_ptp'
                             GROUP BY ALL ORDER BY findings DESC, dollars_at_risk DESC LIMIT 15""", run_id)
    from claimaudit import coverage

    unchecked = pl.DataFrame(summary["unchecked"] if "unchecked" in summary else coverage.causes(con, run_id), schema={
        "family": pl.String, "reason": pl.String, "first_date": pl.String, "last_date": pl.String,
        "lines": pl.Int64, "dollars": pl.Float64})
    data_quality = _q(con, """SELECT expectation_id, level, description, success, unexpected_count,
                              round(unexpected_percent, 4) AS unexpected_percent, rows_acted_on
                              FROM dq_results WHERE run_id = $run ORDER BY success, level, expectation_id""", run_id)
    trend = con.sql("""
        WITH recent AS (SELECT run_id, started_at FROM runs WHERE status = 'completed' AND scope_key = $scope
                          AND started_at <= (SELECT started_at FROM runs WHERE run_id = $run)
                        UNION SELECT run_id, started_at FROM runs WHERE run_id = $run
                        ORDER BY started_at DESC LIMIT 12)
        , families AS (SELECT DISTINCT family FROM findings WHERE run_id IN (SELECT run_id FROM recent))
        , ran AS (         -- every family in every run, except the families a run skipped (not zero: absent)
            SELECT r.run_id, r.started_at, fam.family
            FROM recent r CROSS JOIN families fam JOIN runs x ON x.run_id = r.run_id
            WHERE NOT list_contains(from_json(coalesce(x.families_skipped, '[]'), '["VARCHAR"]'), fam.family))
        SELECT r.run_id, r.started_at, r.family, count(f.rule_id) AS findings,
               coalesce(sum(f.amount_at_risk) FILTER (WHERE f.severity = 'error'), 0)::DOUBLE AS dollars_at_risk
        FROM ran r LEFT JOIN findings f ON f.run_id = r.run_id AND f.family = r.family
        GROUP BY ALL ORDER BY r.started_at, r.family""", params={"run": run_id, "scope": run["scope_key"] or ""}).pl()
    total = con.execute("SELECT count(*) FROM findings WHERE run_id = ?", [run_id]).fetchall()[0][0]
    findings = _q(con, f"""SELECT * EXCLUDE (run_id, fingerprint) FROM findings WHERE run_id = $run
                           ORDER BY coalesce(amount_at_risk, 0) DESC, severity, claim_id, line_number, rule_id
                           LIMIT {TABLE_CAP}""", run_id)
    return ReportData(run=run, summary=summary, by_rule=by_rule, by_family=by_family, by_provider=dims["provider"],
                      by_payer=dims["payer"], by_code=dims["code"], code_pairs=code_pairs, unchecked=unchecked,
                      data_quality=data_quality, trend=trend, findings=findings, findings_total=total,
                      resolved=history.resolved(con, run_id, limit=RESOLVED_SHOWN))
