"""The DuckDB warehouse: one file, opened, migrated and closed here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from claimaudit import workdir
from claimaudit.errors import WarehouseError
from claimaudit.resources import resource

DEFAULT_DB = Path("claimaudit.duckdb")


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
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db_path), read_only=read_only)
    except duckdb.Error as exc:  # locked by another process, not a DuckDB file, newer format...
        raise WarehouseError(f"{db_path}: cannot open the warehouse: {str(exc).splitlines()[0]}") from None
    with workdir.private_dir(db_path, "spill", fallback_to_tmp=True) as spill:
        try:
            con.execute("SET temp_directory = ?", [str(spill)])
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
