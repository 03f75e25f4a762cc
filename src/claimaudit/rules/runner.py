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

from claimaudit import progress
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
    # unit classes and therapy flags: the bundled starter, with the always-therapy flags of the latest
    # imported CMS annual therapy code list when there is one (codes it lists that the starter lacks too)
    con.execute("""CREATE OR REPLACE TEMP TABLE code_classes AS
                   WITH starter AS (
                       SELECT * FROM read_csv(?, header = true, columns = {
                           'procedure_code': 'VARCHAR', 'code_class': 'VARCHAR', 'always_therapy': 'BOOLEAN',
                           'discipline_modifier': 'VARCHAR', 'description': 'VARCHAR', 'source': 'VARCHAR'})
                   ), list AS (
                       SELECT procedure_code, designation FROM ref_therapy_codes
                       WHERE file_id = (SELECT max(file_id) FROM ref_files WHERE kind = 'therapy' AND replaced_by IS NULL
                                        AND version = (SELECT max(version) FROM ref_files
                                                       WHERE kind = 'therapy' AND replaced_by IS NULL))
                   )
                   SELECT coalesce(s.procedure_code, l.procedure_code) AS procedure_code,
                          coalesce(s.code_class, 'other') AS code_class,
                          CASE WHEN EXISTS (SELECT 1 FROM list) THEN coalesce(l.designation = 'always', false)
                               ELSE coalesce(s.always_therapy, false) END AS always_therapy,
                          s.discipline_modifier, s.description,
                          CASE WHEN EXISTS (SELECT 1 FROM list) THEN 'CMS therapy code list' ELSE s.source END AS source
                   FROM starter s FULL OUTER JOIN list l USING (procedure_code)""",
                [str(resource("data", "reference", "code_classes.csv"))])
    # KX / targeted-review thresholds by year: the bundled file, and an imported one wins for its years
    con.execute("""CREATE OR REPLACE TEMP TABLE therapy_thresholds AS
                   WITH bundled AS (
                       SELECT * FROM read_csv(?, header = true, columns = {
                           'year': 'INTEGER', 'kx_pt_slp': 'DECIMAL(12,2)', 'kx_ot': 'DECIMAL(12,2)',
                           'tmr': 'DECIMAL(12,2)', 'source': 'VARCHAR'})
                   ), imported AS (
                       SELECT t.year, t.kx_pt_slp, t.kx_ot, t.tmr, coalesce(t.source, f.source_name) AS source
                       FROM ref_thresholds t JOIN ref_files f USING (file_id) WHERE f.replaced_by IS NULL
                       QUALIFY row_number() OVER (PARTITION BY t.year ORDER BY t.file_id DESC) = 1
                   )
                   SELECT * FROM imported
                   UNION ALL SELECT * FROM bundled WHERE year NOT IN (SELECT year FROM imported)""",
                [str(resource("data", "reference", "therapy_thresholds.csv"))])
    con.execute(resource("sql", "rules", "_prepare.sql").read_text(encoding="utf-8"))


def run_rules(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, float]:
    """Run every rule file for ``run_id``; returns seconds per rule file. Then record what the rules
    could not check (``_unchecked.sql`` -> unchecked_lines)."""
    prepare(con, run_id)
    con.execute("DELETE FROM findings WHERE run_id = ?", [run_id])
    timings: dict[str, float] = {}
    for path in rule_files():
        body = path.read_text(encoding="utf-8").strip().rstrip(";")
        started = time.perf_counter()
        con.execute(f"INSERT INTO findings BY NAME SELECT getvariable('run_id') AS run_id, * FROM (\n{body}\n)")
        timings[path.stem] = round(time.perf_counter() - started, 3)
        progress.note("rules: %s done in %.1f s", path.name, timings[path.stem])
    body = resource("sql", "rules", "_unchecked.sql").read_text(encoding="utf-8").strip().rstrip(";")
    con.execute("DELETE FROM unchecked_lines WHERE run_id = ?", [run_id])
    con.execute(f"INSERT INTO unchecked_lines BY NAME SELECT getvariable('run_id') AS run_id, * FROM (\n{body}\n)")
    return timings
