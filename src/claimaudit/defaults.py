"""Defaults the command line shows in its options. Kept apart from the engine so that ``claimaudit``
can parse its arguments, and start the data-quality worker, before DuckDB and Polars are imported."""

from __future__ import annotations

from pathlib import Path

DEFAULT_DB = Path("claimaudit.duckdb")     # the warehouse file
DEFAULT_PROFILE = "medicare"               # the rule profile of lines whose payer maps to none
