"""The DuckDB warehouse: one file, opened, migrated and closed here."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb

from claimaudit import workdir
from claimaudit.defaults import DEFAULT_DB
from claimaudit.errors import WarehouseError
from claimaudit.resources import resource

#: DuckDB's working memory per connection; past it, joins, sorts and aggregates spill to the warehouse's
#: private work folder (docs/scaling.md). One setting for every connection the audit opens.
MEMORY_ENV = "CLAIMAUDIT_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "3GB"
_MEMORY = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*")


def memory_limit() -> str:
    """The memory limit from ``CLAIMAUDIT_MEMORY_LIMIT`` (e.g. ``3GB``, ``1.5GiB``), checked against a closed
    grammar before it reaches DuckDB."""
    value = os.environ.get(MEMORY_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    match = _MEMORY.fullmatch(value)
    if not match or float(match.group(1)) <= 0:
        raise WarehouseError(f"{MEMORY_ENV}={value!r}: expected a size such as 3GB, 1500MB or 2GiB")
    return f"{match.group(1)}{match.group(2).upper().replace('I', 'i')}"


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMP)")
    done = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    for path in sorted(resource("sql", "schema").glob("*.sql")):
        if path.name in done:
            continue
        con.execute("BEGIN")
        con.execute(path.read_text(encoding="utf-8"))
        con.execute("INSERT INTO schema_migrations VALUES (?, now())", [path.name])
        con.execute("COMMIT")


@contextlib.contextmanager
def connect(db_path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, apply pending migrations, and always close it (spill files go with it)."""
    db_path = Path(db_path)
    if read_only and not db_path.exists():
        raise WarehouseError(f"{db_path}: no warehouse here yet (run `claimaudit audit` or `refdata import` first)")
    limit = memory_limit()
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.Error as exc:  # locked by another process, not a DuckDB file, newer format...
        raise WarehouseError(f"{db_path}: cannot open the warehouse: {str(exc).splitlines()[0]}") from None
    with workdir.private_dir(db_path, "spill", fallback_to_tmp=True) as spill:
        try:
            con.execute("SET temp_directory = ?", [str(spill)])
            con.execute("SET memory_limit = ?", [limit])
            con.execute("SET enable_progress_bar = false")     # stage lines are ours (progress.py)
            if not read_only:
                _migrate(con)
            yield con
        finally:
            con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple | None:
    """First row of a query, or None. Fetches the whole result: in DuckDB 2.0 a partially fetched
    ``execute()`` blocks the next ``sql()`` on the connection (STACK.md)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None
