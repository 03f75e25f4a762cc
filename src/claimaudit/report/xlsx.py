"""report.xlsx: Summary, Findings (every schema column), By provider, By rule, Data quality, Quarantine.

Written with xlsxwriter. The small sheets go through Polars' write_excel (Excel tables with filter
buttons); the Findings sheet is written row by row with a frozen header, an autofilter, column
widths and a dollar format. xlsxwriter writes ~70k cells/s on the 2-core machine (160k findings x
21 columns took 41-56 s), so the sheet holds the XLSX_FINDINGS_CAP findings with the most dollars
at risk, and the Summary sheet says so when it is cut; findings.parquet/.csv always hold them all.

In two steps, so the outputs stage can overlap them with its other work: :func:`begin_xlsx` needs only
the findings (the workbook with its Findings sheet, and an empty Summary sheet as the first tab);
:func:`finish_xlsx` adds what needs the run's summary and writes the file (the workbook's close).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import xlsxwriter

from claimaudit import spreadsheet
from claimaudit.report.data import ReportData, rule_name
from claimaudit.schema import FINDINGS_COLUMNS

XLSX_FINDINGS_CAP = 50_000       # rows on the Findings (and Quarantine) sheet (Excel stops at 1,048,575)
QUARANTINE_FIRST = ["reason", "source_file", "source_line"]
DOLLARS = "$#,##0.00"
WIDTHS = {"run_id": 24, "rule_id": 10, "rule_name": 36, "family": 12, "severity": 9, "claim_id": 14, "line_number": 6,
          "patient_id": 12, "rendering_npi": 12, "date_of_service": 11, "procedure_code": 9, "related_code": 9,
          "related_lines": 24, "expected": 30, "actual": 30, "message": 70, "recommended_action": 60,
          "amount_at_risk": 12, "predicted_carc": 18, "reference": 50, "fingerprint": 34, "status": 10}


def _stream_findings(workbook, name: str, findings: pl.DataFrame) -> None:
    """One row per finding, every schema column."""
    ws = workbook.add_worksheet(name)
    header = workbook.add_format({"bold": True, "bg_color": "#E8ECF0", "border": 1})
    dollars = workbook.add_format({"num_format": DOLLARS})
    dates = workbook.add_format({"num_format": "yyyy-mm-dd"})
    columns = findings.columns
    for i, c in enumerate(columns):
        ws.set_column(i, i, WIDTHS.get(c, 14), dollars if c == "amount_at_risk" else dates if c == "date_of_service"
                      else None)
    ws.write_row(0, 0, columns, header)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(findings.height, 1), len(columns) - 1)
    rows = findings.with_columns(pl.col("related_lines").list.join(" "),
                                 pl.col("amount_at_risk").cast(pl.Float64)).iter_rows()
    # (rule_name, right after rule_id, comes from the catalogue: see begin_xlsx)
    for r, values in enumerate(rows, start=1):
        ws.write_row(r, 0, values)


def _summary_sheet(workbook, rows: list[tuple[str, object]]) -> None:
    """Item / value, each value in its own type: numbers as numbers, the start as an Excel datetime."""
    import datetime as dt
    import numbers

    ws = workbook.get_worksheet_by_name("Summary")
    bold = workbook.add_format({"bold": True, "bg_color": "#E8ECF0", "border": 1})
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    money = workbook.add_format({"num_format": DOLLARS})
    count = workbook.add_format({"num_format": "#,##0"})
    ws.set_column(0, 0, 30)
    ws.set_column(1, 1, 90)
    ws.write_row(0, 0, ["item", "value"], bold)
    for r, (item, value) in enumerate(rows, start=1):
        ws.write_string(r, 0, item)
        if isinstance(value, dt.datetime):
            ws.write_datetime(r, 1, value.replace(tzinfo=None), when)
        elif isinstance(value, bool) or value is None:
            ws.write_string(r, 1, "" if value is None else str(value))
        elif isinstance(value, numbers.Number):
            ws.write_number(r, 1, float(value), money if item.startswith("dollars") else count)
        else:
            ws.write_string(r, 1, str(value))


def _sheet(workbook, name: str, frame: pl.DataFrame, dollars: tuple[str, ...] = (),
           percents: tuple[str, ...] = ()) -> None:
    frame = frame.with_columns([pl.col(c).list.join(" ") for c, t in frame.schema.items() if isinstance(t, pl.List)])
    frame.write_excel(workbook=workbook, worksheet=name, autofilter=True, freeze_panes=(1, 0), autofit=frame.height < 50_000,
                      column_formats={**{c: DOLLARS for c in dollars if c in frame.columns},
                                      **{c: "0.000%" for c in percents if c in frame.columns}},
                      dtype_formats={pl.Date: "yyyy-mm-dd"}, include_header=True, table_style=None)


def begin_xlsx(con: duckdb.DuckDBPyConnection, run_id: str, path: Path) -> xlsxwriter.Workbook:
    """The workbook for ``path`` with an empty Summary sheet (the first tab) and the Findings sheet
    written: the XLSX_FINDINGS_CAP findings with the most dollars at risk. Nothing is on disk yet."""
    findings = con.sql(f"SELECT {', '.join(FINDINGS_COLUMNS)} FROM findings WHERE run_id = $run "
                       "ORDER BY coalesce(amount_at_risk, 0) DESC, claim_id, line_number, rule_id, related_code "
                       f"LIMIT {XLSX_FINDINGS_CAP}", params={"run": run_id}).pl()
    findings = findings.insert_column(findings.columns.index("rule_id") + 1,
                                      findings.select(rule_name().alias("rule_name")).to_series())
    workbook = spreadsheet.workbook(path)              # strings are never formulas or links
    workbook.add_worksheet("Summary")                  # filled by finish_xlsx
    _stream_findings(workbook, "Findings", findings)
    return workbook


def finish_xlsx(con: duckdb.DuckDBPyConnection, data: ReportData, workbook: xlsxwriter.Workbook) -> None:
    """The Summary sheet and the sheets after Findings, then the file (written by the close)."""
    run_id, s = data.run["run_id"], data.summary
    total = data.findings_total
    from claimaudit.pipeline import quarantine_frame

    quarantine = quarantine_frame(con, run_id, limit=XLSX_FINDINGS_CAP)       # original fields spread out
    quarantine = quarantine.select(QUARANTINE_FIRST + [c for c in quarantine.columns if c not in QUARANTINE_FIRST])
    summary_rows = [
        ("run", run_id), ("started", data.run["started_at"]), ("code version", data.run["code_version"]),
        ("profile (default)", data.run["profile_default"]), ("mapping", data.run["mapping"]),
        ("rows read", s["read"]), ("rows loaded", s["loaded"]), ("rows quarantined", s["quarantined"]),
        ("reconciles", "yes" if s["reconciled"] else "NO"), ("visits", s["visits"]),
        ("findings", s["findings"]["total"]), ("errors", s["findings"]["error"]),
        ("warnings", s["findings"]["warning"]), ("info", s["findings"]["info"]),
        ("dollars at risk (errors)", s["amount_at_risk"]),
        ("new since previous run", (s.get("history") or {}).get("new")),
        ("resolved since previous run", (s.get("history") or {}).get("resolved")),
        ("reference", s["reference"]["note"]),
        ("Findings sheet", f"all {total:,} findings, highest dollars at risk first" if total <= XLSX_FINDINGS_CAP
         else f"the {XLSX_FINDINGS_CAP:,} findings with the most dollars at risk, of {total:,}: the full list is "
              "in findings.parquet and findings.csv"),
    ]
    if s["quarantined"] > XLSX_FINDINGS_CAP:
        summary_rows.append(("Quarantine sheet", f"the first {XLSX_FINDINGS_CAP:,} of {s['quarantined']:,} quarantined "
                                                 "rows: all of them are in quarantine.csv"))
    with workbook:                                       # the close writes the file
        _summary_sheet(workbook, summary_rows)
        _sheet(workbook, "By provider", data.by_provider, dollars=("dollars_at_risk",))
        _sheet(workbook, "By rule", data.by_rule, dollars=("dollars_at_risk",))
        dq = data.data_quality
        if "unexpected_percent" in dq.columns:          # GX gives percent points; Excel's % format wants a fraction
            dq = dq.with_columns(pl.col("unexpected_percent") / 100)
        _sheet(workbook, "Data quality", dq if dq.height else
               pl.DataFrame({"note": ["data-quality suite skipped for this run"]}), percents=("unexpected_percent",))
        _sheet(workbook, "Quarantine", quarantine)
