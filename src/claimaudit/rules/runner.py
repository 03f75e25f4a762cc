"""Run the rule catalogue: every ``sql/rules/*.sql`` file is one rule family.

A rule file is one SELECT over the temp tables built by ``_prepare.sql`` (``audit_lines``,
``dos_versions``) and ``profiles``; it yields rows in the findings schema (without run_id). The
runner inserts them BY NAME, so a rule file reads like a dbt model. Files starting with ``_`` are
setup, not rules.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb

from claimaudit.resources import resource
from claimaudit.rules.profiles import load_profiles, register_profiles

_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")


def rule_files() -> list[Path]:
    return sorted(p for p in resource("sql", "rules").glob("*.sql") if not p.name.startswith("_"))


def prepare(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    if not _SAFE_RUN_ID.match(run_id):
        raise ValueError(f"unsafe run id {run_id!r}")
    con.execute("SET VARIABLE run_id = ?", [run_id])
    register_profiles(con, load_profiles())
    con.execute("""CREATE OR REPLACE TEMP TABLE code_classes AS
                   SELECT * FROM read_csv(?, header = true, columns = {
                       'procedure_code': 'VARCHAR', 'code_class': 'VARCHAR', 'always_therapy': 'BOOLEAN',
                       'discipline_modifier': 'VARCHAR', 'description': 'VARCHAR', 'source': 'VARCHAR'})""",
                [str(resource("data", "reference", "code_classes.csv"))])
    con.execute(resource("sql", "rules", "_prepare.sql").read_text(encoding="utf-8"))


def run_rules(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, float]:
    """Run every rule file for ``run_id``; returns seconds per rule file."""
    prepare(con, run_id)
    con.execute("DELETE FROM findings WHERE run_id = ?", [run_id])
    timings: dict[str, float] = {}
    for path in rule_files():
        body = path.read_text(encoding="utf-8").strip().rstrip(";")
        started = time.perf_counter()
        con.execute(f"INSERT INTO findings BY NAME SELECT getvariable('run_id') AS run_id, * FROM (\n{body}\n)")
        timings[path.stem] = round(time.perf_counter() - started, 3)
    return timings
