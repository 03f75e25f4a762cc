"""report.xlsx: Summary, Findings (every schema column), By provider, By rule, Data quality, Quarantine.

Written with xlsxwriter in constant-memory mode through Polars' write_excel (frozen header,
autofilter, column widths, dollar formats). Excel holds 1,048,576 rows a sheet: larger finding
lists continue on "Findings (2)", ... and the Summary sheet says so.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import xlsxwriter

from claimaudit.report.data import ReportData
from claimaudit.schema import FINDINGS_COLUMNS

EXCEL_ROWS = 1_048_575            # data rows under one header row
DOLLARS = "$#,##0.00"


def _sheet(workbook, name: str, frame: pl.DataFrame, dollars: tuple[str, ...] = ()) -> None:
    frame = frame.with_columns([pl.col(c).list.join(" ") for c, t in frame.schema.items() if isinstance(t, pl.List)])
    frame.write_excel(workbook=workbook, worksheet=name, autofilter=True, freeze_panes=(1, 0), autofit=frame.height < 50_000,
                      column_formats={c: DOLLARS for c in dollars if c in frame.columns},
                      dtype_formats={pl.Date: "yyyy-mm-dd"}, include_header=True, table_style=None)


def render_xlsx(con: duckdb.DuckDBPyConnection, data: ReportData, path: Path) -> None:
    run_id, s = data.run["run_id"], data.summary
    findings = con.sql(f"SELECT {', '.join(FINDINGS_COLUMNS)} FROM findings WHERE run_id = $run "
                       "ORDER BY claim_id, line_number, rule_id, related_code", params={"run": run_id}).pl()
    quarantine = con.sql("SELECT source_file, source_line, reason, record FROM quarantine WHERE run_id = $run "
                         "ORDER BY source_file, source_line", params={"run": run_id}).pl()
    parts = max(1, -(-findings.height // EXCEL_ROWS))
    summary_rows = [
        ("run", run_id), ("started", str(data.run["started_at"])), ("code version", data.run["code_version"]),
        ("profile (default)", data.run["profile_default"]), ("mapping", data.run["mapping"]),
        ("rows read", s["read"]), ("rows loaded", s["loaded"]), ("rows quarantined", s["quarantined"]),
        ("reconciles", "yes" if s["reconciled"] else "NO"), ("visits", s["visits"]),
        ("findings", s["findings"]["total"]), ("errors", s["findings"]["error"]),
        ("warnings", s["findings"]["warning"]), ("info", s["findings"]["info"]),
        ("dollars at risk (errors)", s["amount_at_risk"]),
        ("new since previous run", (s.get("history") or {}).get("new")),
        ("resolved since previous run", (s.get("history") or {}).get("resolved")),
        ("reference", s["reference"]["note"]),
        ("findings sheets", "Findings" if parts == 1 else
         f"Findings split over {parts} sheets (Excel holds {EXCEL_ROWS + 1:,} rows a sheet): Findings, "
         + ", ".join(f"Findings ({i})" for i in range(2, parts + 1))),
    ]
    with xlsxwriter.Workbook(str(path), {"constant_memory": False}) as workbook:
        summary = pl.DataFrame({"item": [k for k, _ in summary_rows], "value": [str(v) if v is not None else ""
                                                                                for _, v in summary_rows]})
        _sheet(workbook, "Summary", summary)
        for i in range(parts):
            _sheet(workbook, "Findings" if i == 0 else f"Findings ({i + 1})",
                   findings.slice(i * EXCEL_ROWS, EXCEL_ROWS), dollars=("amount_at_risk",))
        _sheet(workbook, "By provider", data.by_provider, dollars=("dollars_at_risk",))
        _sheet(workbook, "By rule", data.by_rule, dollars=("dollars_at_risk",))
        _sheet(workbook, "Data quality", data.data_quality if data.data_quality.height else
               pl.DataFrame({"note": ["data-quality suite skipped for this run"]}))
        _sheet(workbook, "Quarantine", quarantine)
