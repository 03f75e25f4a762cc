"""Reports a person acts on: report.html (self-contained, offline) and report.xlsx, per run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import xlsxwriter

from claimaudit.report.data import collect
from claimaudit.report.html import render_html
from claimaudit.report.xlsx import begin_xlsx, finish_xlsx


def begin(con: duckdb.DuckDBPyConnection, run_id: str, out_dir: Path) -> xlsxwriter.Workbook:
    """report.xlsx begun (its Findings sheet, in memory) under the temporary name :func:`render` renames."""
    from claimaudit.pipeline import partial_path

    return begin_xlsx(con, run_id, partial_path(out_dir / "report.xlsx"))


def render(con: duckdb.DuckDBPyConnection, run_id: str, out_dir: Path, summary: dict,
           begun: Callable[[], xlsxwriter.Workbook]) -> list[str]:
    """report.html and report.xlsx, each written whole or not at all. ``begun`` returns the workbook
    :func:`begin` started (the outputs stage begins it on a thread of its own, beside the summary)."""
    from claimaudit.pipeline import atomic

    data = collect(con, run_id, summary)
    with atomic(out_dir / "report.html") as tmp:
        render_html(data, tmp)
    workbook = begun()
    with atomic(out_dir / "report.xlsx"):      # the workbook was begun under atomic's temporary name
        finish_xlsx(con, data, workbook)
    return ["report.html", "report.xlsx"]
