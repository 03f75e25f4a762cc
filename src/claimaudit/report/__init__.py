"""Reports a person acts on: report.html (self-contained, offline) and report.xlsx, per run."""

from __future__ import annotations

from pathlib import Path

import duckdb

from claimaudit.report.data import collect
from claimaudit.report.html import render_html
from claimaudit.report.xlsx import render_xlsx


def render(con: duckdb.DuckDBPyConnection, run_id: str, out_dir: Path, summary: dict) -> list[str]:
    data = collect(con, run_id, summary)
    render_html(data, out_dir / "report.html")
    render_xlsx(con, data, out_dir / "report.xlsx")
    return ["report.html", "report.xlsx"]
