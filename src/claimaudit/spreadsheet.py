"""Text that a spreadsheet opens stays text (CSV/formula injection, OWASP).

Claim fields come from clients, and billers open claimaudit's outputs in Excel. A cell that starts
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is evaluated by Excel as a formula
(``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``). So:

* report.xlsx is written by a workbook that never turns a string into a formula or a link
  (xlsxwriter ``strings_to_formulas`` / ``strings_to_urls`` off): every text cell is a string cell.
* findings.csv and quarantine.csv prefix such a text with a single quote (``'=1+1``), the OWASP
  recommendation; plain numbers (``-5.00``) are left alone, as Excel reads them as numbers anyway.
* findings.parquet and the warehouse keep the exact values.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import xlsxwriter

FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?[0-9]+(\.[0-9]+)?$"


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column of ``frame`` with formula-starting values prefixed by ``'`` (for CSV)."""
    def safe(name: str) -> pl.Expr:
        col = pl.col(name)
        risky = col.str.contains(FORMULA_START) & ~col.str.contains(PLAIN_NUMBER)
        return pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name)
    return frame.with_columns([safe(c) for c, t in frame.schema.items() if t == pl.String])


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    neutralise(frame).write_csv(path)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def neutralised_sql(column: str) -> str:
    """The rule of ``neutralise`` as a DuckDB expression over one text column (name quoted here)."""
    name = _ident(column)
    return (f"CASE WHEN regexp_matches({name}, '{FORMULA_START}') AND NOT regexp_matches({name}, '{PLAIN_NUMBER}') "
            f"THEN chr(39) || {name} ELSE {name} END AS {name}")


def copy_csv(relation: duckdb.DuckDBPyRelation, path: Path) -> None:
    """Write a DuckDB relation as CSV (header; NULL as an empty field) with its text columns neutralised,
    streamed by DuckDB: the rows never become a Python frame."""
    text = {c for c, t in zip(relation.columns, relation.types, strict=True) if str(t) == "VARCHAR"}
    relation.select(", ".join(neutralised_sql(c) if c in text else _ident(c) for c in relation.columns)) \
        .write_csv(str(path), header=True)


def workbook(path: Path) -> xlsxwriter.Workbook:
    """An xlsxwriter workbook in which a string is always a string cell, assembled in memory: by default
    xlsxwriter writes each sheet's XML to a temporary file in /tmp first, and these sheets hold claim data."""
    return xlsxwriter.Workbook(str(path), {"remove_timezone": True, "strings_to_formulas": False,
                                           "strings_to_urls": False, "strings_to_numbers": False,
                                           "in_memory": True})
