"""Load a run's input files into claim_lines and quarantine, in one transaction, inside DuckDB.

read -> raw text tables (readers.py) -> column accounting (header.py) -> typing (normalize.py) ->
claim_lines + quarantine. Every record is loaded or quarantined with a reason and its original
fields; every column is loaded, declared ignored, or reported (and stops the run when it holds data
nobody loads, unless the caller allows it). No full-extract frame exists in Python.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from claimaudit import progress
from claimaudit.errors import ClaimAuditError, scrub
from claimaudit.ingest import normalize
from claimaudit.ingest.formats import check_inputs
from claimaudit.ingest.header import unmapped_error
from claimaudit.ingest.mapping import Mapping
from claimaudit.ingest.readers import RawFile, file_format, load_raw, raw_rows_sql, used
from claimaudit.schema import CLAIM_LINE_COLUMNS

_RAW_TABLE = re.compile(r"^ingest_raw_[A-Za-z0-9_]+$")


@dataclass
class Loaded:
    read: int
    loaded: int
    quarantined: int
    files: list[dict] = field(default_factory=list)
    columns_not_loaded: list[dict] = field(default_factory=list)   # unmapped (allowed) or declared ignored
    profile_sources: dict = field(default_factory=lambda: {"file": 0, "payer_map": 0, "run_default": 0})


def _profile_sources(con: duckdb.DuckDBPyConnection, raw: RawFile, spec: Mapping) -> dict:
    """Of the file's rows: how many name their profile, how many take it from the mapping's payer map,
    how many the run's default (one scan of two raw columns)."""
    if not raw.records:
        return {"file": 0, "payer_map": 0, "run_default": 0}
    if "profile" in spec.constants:
        return {"file": raw.records, "payer_map": 0, "run_default": 0}
    where = {c.feeds: f"ca_text(c{c.position})" for c in raw.header.columns if c.feeds in ("profile", "payer")}
    own = where.get("profile", "NULL::VARCHAR")
    payer = where.get("payer", "NULL::VARCHAR") if "payer" not in spec.constants else "$payer"
    sql = (f"SELECT count({own}), count(*) FILTER (WHERE {own} IS NULL AND upper({payer}) IN "
           f"(SELECT payer_key FROM ca_payer_map)) FROM {raw.table}")
    own_n, mapped = con.execute(sql, {"payer": str(spec.constants["payer"])} if "$payer" in sql else {}).fetchall()[0]
    return {"file": own_n, "payer_map": mapped, "run_default": raw.records - own_n - mapped}


def _record_keys(raw: RawFile) -> list[str]:
    return [c.name or f"(column {c.position})" for c in raw.header.columns]


def _column_report(con: duckdb.DuckDBPyConnection, raw: RawFile, run_id: str) -> list[dict]:
    """Every header column; the ones nothing loads carry their number of non-empty values (one scan)."""
    idle = [c for c in raw.header.columns if c.feeds is None]
    counts = {}
    if idle and raw.records:
        row = con.execute("SELECT " + ", ".join(f"count(ca_text(c{c.position}))" for c in idle)
                          + f" FROM {raw.table}").fetchall()[0]
        counts = {c.position: n for c, n in zip(idle, row, strict=True)}
    return [{"position": c.position, "name": c.name, "feeds": c.feeds, "ignored": c.ignored,
             "non_empty": counts.get(c.position, 0) if c.feeds is None else None} for c in raw.header.columns]


def load_inputs(con: duckdb.DuckDBPyConnection, run_id: str, inputs: list[str | Path], mapping: Mapping, *,
                canonical: Mapping, default_profile: str, known_profiles: set[str], keys_per_file: bool = False,
                allow_unmapped: bool = False) -> Loaded:
    """Read, type and load ``inputs`` for ``run_id``. The caller owns the transaction."""
    check_inputs(inputs)                      # every path checked before anything is read
    normalize.prepare(con, mapping, known_profiles)
    raws: list[RawFile] = []
    reports: dict[int, list[dict]] = {}
    for index, path in enumerate(inputs):
        raw = load_raw(con, path, mapping, run_id=run_id, file_index=index, source_file=str(path))
        raws.append(raw)
        progress.note("ingest: %s read (%s records, %d of %d files)", raw.path.name, f"{raw.records:,}", index + 1,
                      len(inputs))
        spec = canonical if raw.file_format == "x12-837" else mapping
        reports[index] = _column_report(con, raw, run_id)
        holding = [(c, n["non_empty"]) for c, n in zip(raw.header.columns, reports[index], strict=True)
                   if c.feeds is None and not c.ignored and n["non_empty"]]
        if holding and not allow_unmapped:
            raise unmapped_error(raw.path, holding, spec, raw.header)

    for table in ("claim_lines", "quarantine", "run_inputs"):
        con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    # Each file: one typing pass straight into claim_lines (no typed copy of the extract anywhere).
    # The records it did not load are found by their row and typed again, alone, for their reason.
    columns = ", ".join(CLAIM_LINE_COLUMNS)
    for raw in raws:
        spec = canonical if raw.file_format == "x12-837" else mapping
        sql, params = normalize.typed_sql(raw, spec, default_profile=default_profile, prefix=f"f{raw.file_index}")
        insert = (f"INSERT INTO claim_lines BY NAME SELECT $run_id AS run_id, {columns} FROM ({sql}) "
                  "WHERE reason IS NULL")
        loaded = con.execute(insert, used(insert, {**params, "run_id": run_id})).fetchall()[0][0]
        if loaded < raw.records:
            _quarantine_typed(con, raw, spec, run_id, default_profile)
        progress.note("ingest: %s typed and loaded (%s lines)", raw.path.name, f"{loaded:,}")
    _quarantine_duplicates(con, run_id, raws, keys_per_file)
    con.execute("""INSERT INTO quarantine
                   SELECT $run_id, i.source_file, g.line, g.reason, json_object('raw_record', g.raw_record)
                   FROM ingest_gaps g JOIN (SELECT UNNEST($files) AS source_file, UNNEST($indexes) AS file_index) i
                     USING (file_index)
                   WHERE g.run_id = $run_id AND g.is_record""",
                {"run_id": run_id, "files": [r.source_file for r in raws], "indexes": [r.file_index for r in raws]})
    # counted from the tables, not from the steps above: read = loaded + quarantined is a real check
    loaded_by = dict(con.execute("SELECT source_file, count(*) FROM claim_lines WHERE run_id = ? GROUP BY 1",
                                 [run_id]).fetchall())
    quarantined_by = dict(con.execute("SELECT source_file, count(*) FROM quarantine WHERE run_id = ? GROUP BY 1",
                                      [run_id]).fetchall())
    result = Loaded(0, 0, 0)
    for raw in raws:
        loaded, quarantined = loaded_by.get(raw.source_file, 0), quarantined_by.get(raw.source_file, 0)
        info = {"source_file": raw.source_file, "path": str(raw.path.resolve()), "sha256": raw.sha256,
                "bytes": raw.bytes, "file_format": raw.file_format, "rows_read": raw.rows_read,
                "rows_loaded": loaded, "rows_quarantined": quarantined, "warnings": raw.warnings}
        result.files.append(info)
        result.read += raw.rows_read
        result.loaded += loaded
        result.quarantined += quarantined
        for k, v in _profile_sources(con, raw, canonical if raw.file_format == "x12-837" else mapping).items():
            result.profile_sources[k] += v
        report = reports[raw.file_index]
        for c in report:
            if c["feeds"] is None:
                result.columns_not_loaded.append({"source_file": raw.source_file, **c})
                if not c["ignored"] and c["non_empty"]:
                    raw.warnings.append(f"{('column ' + repr(c['name'])) if c['name'] else 'a column with no header'} "
                                        f"(column {c['position']}) holds {c['non_empty']:,} non-empty value(s) "
                                        "that were NOT loaded (--allow-unmapped-columns)")
        con.execute("""INSERT INTO run_inputs (run_id, source_file, path, sha256, bytes, file_format, rows_read,
                           rows_loaded, rows_quarantined, warnings, file_index, raw_table, first_row, has_src_row,
                           columns)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [run_id, info["source_file"], info["path"], raw.sha256, raw.bytes, raw.file_format,
                     raw.rows_read, loaded, quarantined, json.dumps(raw.warnings), raw.file_index, raw.table,
                     raw.first_row, raw.has_src_row, json.dumps(report)])
    if result.read != result.loaded + result.quarantined:      # a bug, never a data problem: stop loudly
        raise ClaimAuditError(f"internal error: read {result.read} rows but loaded {result.loaded} "
                              f"+ quarantined {result.quarantined}")
    return result


def _record_json(raw: RawFile) -> tuple[str, dict]:
    """json_object of a raw record's original fields (header names as keys), over alias ``r``."""
    keys = _record_keys(raw)
    return (f"json_object({', '.join(f'$k{i}, r.c{i}' for i in range(1, len(keys) + 1))})",
            {f"k{i}": k for i, k in enumerate(keys, start=1)})


def _quarantine_typed(con: duckdb.DuckDBPyConnection, raw: RawFile, spec: Mapping, run_id: str,
                      default_profile: str) -> int:
    """The records of ``raw`` that the typing pass did not load: quarantined with their reason (the
    typing query run again on them alone) and their original fields. Returns how many."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE ingest_unloaded AS
                   SELECT r.ord FROM {raw_rows_sql(raw)} r
                   ANTI JOIN (SELECT source_row FROM claim_lines WHERE run_id = $run_id AND source_file = $source) l
                     ON l.source_row = r.src_row""",
                {"run_id": run_id, "source": raw.source_file})
    sql, params = normalize.typed_sql(raw, spec, default_profile=default_profile, prefix=f"f{raw.file_index}",
                                      only="ord IN (SELECT ord FROM ingest_unloaded)")
    record, keys = _record_json(raw)
    insert = f"""INSERT INTO quarantine
                 SELECT $run_id, t.source_file, t.source_row, t.reason, {record}
                 FROM ({sql}) t JOIN {raw_rows_sql(raw)} r ON r.ord = t.ord
                 WHERE r.ord IN (SELECT ord FROM ingest_unloaded)"""
    n = con.execute(insert, used(insert, {**params, **keys, "run_id": run_id})).fetchall()[0][0]
    expected = con.execute("SELECT count(*) FROM ingest_unloaded").fetchall()[0][0]
    con.execute("DROP TABLE IF EXISTS temp.ingest_unloaded")
    if n != expected:       # a record neither loaded nor given a reason: a bug, never a data problem
        raise ClaimAuditError(f"internal error: {raw.path}: {expected} record(s) not loaded, {n} quarantined")
    return n


def _quarantine_duplicates(con: duckdb.DuckDBPyConnection, run_id: str, raws: list[RawFile],
                           keys_per_file: bool) -> dict[int, int]:
    """A later occurrence of a loaded line's key (in input order) moves to quarantine as
    ``duplicate_claim_line``: the line is audited once. Found by a grouped count (the keys that occur
    more than once), so only those keys are ranked. Returns the number moved per file index."""
    files = [r.source_file for r in raws]
    key = "claim_id, line_number" + (", source_file" if keys_per_file else "")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE ingest_duplicates AS
                    SELECT source_file, source_row, list_position($files, source_file) - 1 AS file_index FROM (
                        SELECT source_file, source_row, row_number() OVER (
                                   PARTITION BY {key} ORDER BY list_position($files, source_file), source_row) AS n
                        FROM claim_lines l
                        SEMI JOIN (SELECT {key} FROM claim_lines WHERE run_id = $run_id
                                   GROUP BY ALL HAVING count(*) > 1) k USING ({key})
                        WHERE l.run_id = $run_id)
                    WHERE n > 1""", {"run_id": run_id, "files": files})
    counts = dict(con.execute("SELECT file_index, count(*) FROM ingest_duplicates GROUP BY 1").fetchall())
    for raw in raws:
        if not counts.get(raw.file_index):
            continue
        record, keys = _record_json(raw)
        insert = f"""INSERT INTO quarantine
                     SELECT $run_id, d.source_file, d.source_row, 'duplicate_claim_line', {record}
                     FROM ingest_duplicates d JOIN {raw_rows_sql(raw)} r ON r.src_row = d.source_row
                     WHERE d.file_index = $file"""
        con.execute(insert, used(insert, {**keys, "run_id": run_id, "file": raw.file_index}))
    if counts:
        con.execute("""DELETE FROM claim_lines WHERE run_id = ? AND (source_file, source_row) IN
                       (SELECT (source_file, source_row) FROM ingest_duplicates)""", [run_id])
    con.execute("DROP TABLE IF EXISTS temp.ingest_duplicates")
    return counts


def raw_files(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict]:
    """The run's raw tables that still exist (kept until the data-quality step has run)."""
    rows = con.execute("""SELECT i.source_file, i.file_index, i.raw_table, i.first_row, i.has_src_row, i.columns,
                                 (SELECT count(*) FROM ingest_gaps g WHERE g.run_id = i.run_id
                                                                       AND g.file_index = i.file_index)
                          FROM run_inputs i JOIN duckdb_tables() t ON t.table_name = i.raw_table
                          WHERE i.run_id = ? AND t.schema_name = 'main' ORDER BY i.file_index""",
                       [run_id]).fetchall()
    return [{"source_file": r[0], "file_index": r[1], "raw_table": r[2], "first_row": r[3], "has_src_row": r[4],
             "keys": [c["name"] or f"(column {c['position']})" for c in json.loads(r[5] or "[]")], "gaps": r[6]}
            for r in rows if _RAW_TABLE.match(r[2] or "")]


def original_record_sql(raw: dict, rows: str) -> tuple[str, dict]:
    """SELECT src_row, record (the original fields as JSON, header names as keys) of one raw table's
    records whose src_row is in ``rows`` (a fixed subquery): the JSON is built for those alone."""
    pairs = ", ".join(f"$k{i}, c{i}" for i in range(1, len(raw["keys"]) + 1))
    return (f"SELECT src_row, json_object({pairs}) AS record FROM {raw_rows_sql(raw, '$run_id')} "
            f"WHERE src_row IN ({rows})", {f"k{i}": k for i, k in enumerate(raw["keys"], start=1)})


def drop_raw(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> int:
    """Drop the raw tables of ``run_id`` (all runs' when None) and their gap rows."""
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                                        "AND table_name LIKE 'ingest\\_raw\\_%' ESCAPE '\\'").fetchall()]
    if run_id is not None:
        mine = {r[0] for r in con.execute("SELECT raw_table FROM run_inputs WHERE run_id = ?", [run_id]).fetchall()}
        tables = [t for t in tables if t in mine]
    for table in tables:
        if _RAW_TABLE.match(table):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    if run_id is None:
        con.execute("DELETE FROM ingest_gaps")
    else:
        con.execute("DELETE FROM ingest_gaps WHERE run_id = ?", [run_id])
    return len(tables)


YTD_COLUMNS = ("patient_id", "year", "pt_slp_amount", "ot_amount")


def load_therapy_ytd(con: duckdb.DuckDBPyConnection, run_id: str, path: str | Path) -> dict:
    """The beneficiaries' prior year-to-date therapy amounts (--therapy-ytd: what a MAC eligibility
    response reports): a CSV ``patient_id, year, pt_slp_amount, ot_amount``. Kept exactly or refused:
    a bad value stops the run with one line naming the row and column (never the value). Recorded
    with the run's inputs (SHA-256); not claim lines."""
    from claimaudit.errors import InputError
    from claimaudit.ingest.readers import sha256_file

    path = Path(path)
    if file_format(path) != "csv":
        raise InputError(f"{path}: prior year-to-date amounts come as a CSV file ({', '.join(YTD_COLUMNS)})")
    for macro in normalize.MACROS:
        con.execute(macro)
    try:
        con.execute("""CREATE OR REPLACE TEMP TABLE ytd_raw AS
                       SELECT row_number() OVER () + 1 AS line, * FROM read_csv(?, header = true, all_varchar = true,
                                                                            delim = ',', quote = '"')""", [str(path)])
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot be read as CSV: {scrub(str(exc))}") from None
    header = [r[0] for r in con.execute("DESCRIBE ytd_raw").fetchall()][1:]
    missing = [c for c in YTD_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(YTD_COLUMNS)})")
    bad = con.execute(f"""
        SELECT line, CASE WHEN ca_text(patient_id) IS NULL THEN 'patient_id is empty'
                          WHEN NOT regexp_full_match(ca_text(year), '(19|20)[0-9]{{2}}') THEN 'year is not a year'
                          WHEN ca_text(pt_slp_amount) IS NOT NULL
                               AND NOT regexp_full_match(ca_text(pt_slp_amount), '{normalize.EXACT_CENTS}')
                               THEN 'pt_slp_amount is not an amount with at most two decimals'
                          WHEN ca_text(ot_amount) IS NOT NULL
                               AND NOT regexp_full_match(ca_text(ot_amount), '{normalize.EXACT_CENTS}')
                               THEN 'ot_amount is not an amount with at most two decimals'
                          WHEN TRY_CAST(ca_text(pt_slp_amount) AS DECIMAL(12,2)) < 0
                            OR TRY_CAST(ca_text(ot_amount) AS DECIMAL(12,2)) < 0 THEN 'an amount is negative' END
        FROM ytd_raw ORDER BY line""").fetchall()
    bad = [(line, why) for line, why in bad if why]
    if bad:
        raise InputError(f"{path}: line {bad[0][0]}: {bad[0][1]}" + (f" (and {len(bad) - 1} more line(s))"
                                                                    if len(bad) > 1 else ""))
    con.execute("DELETE FROM therapy_ytd WHERE run_id = ?", [run_id])
    con.execute("""INSERT INTO therapy_ytd
                   SELECT ?, ca_text(patient_id), ca_text(year)::INTEGER, b.bucket, b.amount, line
                   FROM ytd_raw, LATERAL (VALUES ('PT+SLP', TRY_CAST(ca_text(pt_slp_amount) AS DECIMAL(12,2))),
                                                 ('OT', TRY_CAST(ca_text(ot_amount) AS DECIMAL(12,2)))) b(bucket, amount)
                   WHERE b.amount IS NOT NULL""", [run_id])
    beneficiaries = con.execute("SELECT count(DISTINCT patient_id) FROM therapy_ytd WHERE run_id = ?",
                                [run_id]).fetchall()[0][0]
    note = f"prior year-to-date therapy amounts for {beneficiaries} beneficiary(ies) (--therapy-ytd; not claim lines)"
    con.execute("""INSERT INTO run_inputs (run_id, source_file, path, sha256, bytes, file_format, rows_read,
                       rows_loaded, rows_quarantined, warnings)
                   VALUES (?, ?, ?, ?, ?, 'therapy-ytd', 0, 0, 0, ?)""",
                [run_id, str(path), str(path.resolve()), sha256_file(path), path.stat().st_size, json.dumps([note])])
    con.execute("DROP TABLE IF EXISTS temp.ytd_raw")
    return {"beneficiaries": beneficiaries}
