"""Reports a person acts on: report.html (self-contained, offline) and report.xlsx, per run."""

from __future__ import annotations

from pathlib import Path

import duckdb

from claimaudit.report.data import collect
from claimaudit.report.html import render_html
from claimaudit.report.xlsx import render_xlsx


def render(con: duckdb.DuckDBPyConnection, run_id: str, out_dir: Path, summary: dict) -> list[str]:
    """report.html and report.xlsx, each written whole or not at all."""
    from claimaudit.pipeline import atomic

    data = collect(con, run_id, summary)
    with atomic(out_dir / "report.html") as tmp:
        render_html(data, tmp)
    with atomic(out_dir / "report.xlsx") as tmp:
        render_xlsx(con, data, tmp)
    return ["report.html", "report.xlsx"]
