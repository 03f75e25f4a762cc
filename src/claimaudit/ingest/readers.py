"""Read claim extracts (CSV, Parquet, XLSX, X12 837P) into raw text tables in the warehouse.

Nothing is inferred and nothing leaves DuckDB as a Python frame for CSV and Parquet: every cell
arrives as text in a table ``ingest_raw_<run>_<k>`` whose columns are named by position
(``c1..cN``), so NPIs, codes and place-of-service "02" keep their exact characters and no client
text ever becomes part of a query (header names are kept as data, in ``run_inputs.columns``).
normalize.py types the text in SQL.

Provenance: every record keeps the row a spreadsheet shows it on (header = its own row). DuckDB's
CSV reader gives no row number, so a record's row is its ordinal among the good records, shifted
past the records the parser could not split (their rows come from DuckDB's rejects) and past
blank lines (found by a byte scan; DuckDB skips them). Those rows live in ``ingest_gaps``, the
one place both the loader and the data-quality step compute source rows from
(:func:`raw_rows_sql`). (A quoted field spanning several lines is one spreadsheet row; a blank line
after such a record is then counted by its physical line: documented in docs/mappings.md.)
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from claimaudit import archives
from claimaudit.errors import InputError, scrub
from claimaudit.ingest.formats import file_format, is_x12
from claimaudit.ingest.header import Header, find_header
from claimaudit.ingest.mapping import Mapping

LINE = "__line"          # X12 frames: the SV1 segment position of each record
HEAD_BYTES = 256 * 1024  # what header detection reads of a CSV
_DUCKDB_ENCODING = {"utf-8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1"}
_CANDIDATE_DELIMITERS = [",", "\t", "|", ";"]
# What a file that is not text starts with (issue: a ZIP renamed .csv must not read as an encoding problem).
SIGNATURES = [(b"PK\x03\x04", "a ZIP archive (or an .xlsx workbook renamed)"), (b"\x89PNG", "a PNG image"),
              (b"\xff\xd8\xff", "a JPEG image"), (b"%PDF", "a PDF document"), (b"GIF8", "a GIF image"),
              (b"\xd0\xcf\x11\xe0", "an old-style Excel/Word file (.xls/.doc)"), (b"PAR1", "a Parquet file"),
              (b"\x1f\x8b", "a gzip archive"), (b"7z\xbc\xaf", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
              (b"SQLite format 3", "an SQLite database"), (b"DUCK", "a DuckDB database")]


@dataclass
class RawFile:
    """One input file, loaded as text into a warehouse table."""
    path: Path
    source_file: str
    file_index: int
    file_format: str              # csv | parquet | xlsx | x12-837
    sha256: str
    bytes: int
    table: str                    # ingest_raw_<run>_<k>: c1..cN VARCHAR (+ src_row for X12)
    header: Header
    records: int = 0              # rows in the raw table
    rejects: int = 0              # records the parser could not split (in ingest_gaps)
    first_row: int = 2            # spreadsheet row of the first record (tabular formats)
    has_src_row: bool = False     # X12: the raw table carries each record's own position
    gaps: int = 0                 # rows of ingest_gaps (rejected records, blank lines) of this file
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.records + self.rejects


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def transaction_kind(path: Path) -> str:
    """ST01 of the first transaction set (837, 835...)."""
    from claimaudit.x12.segments import head

    text = head(path).lstrip()
    element = text[3]
    found = re.search(rf"ST{re.escape(element)}(\w+)", text)
    return found.group(1) if found else "?"


def is_remittance(path: Path) -> bool:
    """An X12 835 remittance (read into the remit tables, not as claim lines)."""
    return is_x12(path) and transaction_kind(path) == "835"


def binary_kind(head: bytes) -> str | None:
    """What a binary file is, by its first bytes; None for text."""
    for magic, what in SIGNATURES:
        if head.startswith(magic):
            return what
    if b"\x00" in head[:4096] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "a binary file, not text"
    return None


def raw_table(run_id: str, file_index: int) -> str:
    """The raw table's name: from the run id (checked against a closed character set) and a number."""
    from claimaudit.rules.runner import _SAFE_RUN_ID

    if not _SAFE_RUN_ID.match(run_id):
        raise ValueError(f"unsafe run id {run_id!r}")
    return f"ingest_raw_{re.sub(r'[^A-Za-z0-9]', '_', run_id)}_{file_index}"


def _columns_struct(n: int) -> str:
    return "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(1, n + 1)) + "}"


# ---------------------------------------------------------------------------------------- CSV

def _head_text(path: Path, mapping: Mapping) -> str:
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    what = binary_kind(head)
    if what:
        raise InputError(f"{path}: is {what}, not a CSV text file (check the file you meant to send)")
    if len(head) == HEAD_BYTES:                       # a whole number of lines (and of characters)
        head = head[:head.rfind(b"\n") + 1] or head
    try:
        return head.decode({"utf-8": "utf-8-sig", "utf-16": "utf-16", "latin-1": "latin-1"}[mapping.encoding])
    except UnicodeDecodeError as exc:
        line = head[:exc.start].count(b"\n") + 1
        raise InputError(f"{path}: not {mapping.encoding} text at line {line} (wrong encoding? set format.encoding "
                         "in the mapping, e.g. latin-1)") from None


def _rows(text: str, delimiter: str, limit: int = 60) -> list[list[str]]:
    import csv

    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"', doublequote=True, strict=False):
            rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass
    return rows


def _csv_header(path: Path, mapping: Mapping) -> tuple[Header, str]:
    text = _head_text(path, mapping)
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    candidates = [mapping.delimiter] if mapping.delimiter else _CANDIDATE_DELIMITERS
    required = [mapping.source_for(c) for c in ("claim_id", "procedure_code", "date_of_service")]
    best = max(candidates, key=lambda d: max((sum(n in {c.strip() for c in row} for n in required)
                                              for row in _rows(text, d, 20)), default=0))
    return find_header(_rows(text, best), mapping, path), best


def scan_file(path: Path, blanks_after: int | None = None, block_size: int = 1 << 23) -> tuple[str, list[int]]:
    """One pass over the file's bytes: its SHA-256 and, when ``blanks_after`` is given, the line numbers
    (1-based) of the empty lines after that line (DuckDB skips them, a spreadsheet counts them). Runs
    in a thread next to DuckDB's read (hashing releases the GIL); most files have no blank lines."""
    digest, found, line, tail = hashlib.sha256(), set(), 1, b""
    with path.open("rb") as fh:
        while block := fh.read(block_size):
            digest.update(block)
            if blanks_after is None:
                continue
            data = tail + block                        # the last bytes before: a pattern may straddle blocks
            for pattern in (b"\n\n", b"\n\r\n"):
                pos = data.find(pattern)
                while pos != -1:
                    if pos + len(pattern) > len(tail):  # not wholly inside the tail (seen with the last block)
                        blank = line + data.count(b"\n", 0, pos + 1)     # the blank line starts at pos + 1
                        if blank > blanks_after:
                            found.add(blank)
                    pos = data.find(pattern, pos + 1)
            line += data.count(b"\n", 0, len(data) - 2)
            tail = data[-2:]
    return digest.hexdigest(), sorted(found)


def _load_csv(con: duckdb.DuckDBPyConnection, raw: RawFile, mapping: Mapping, run_id: str) -> None:
    header, delimiter = _csv_header(raw.path, mapping)
    raw.header, raw.first_row = header, header.row + 1
    raw.warnings += header.warnings
    options = dict(path=str(raw.path), skip=header.row, delim=delimiter,
                   encoding=_DUCKDB_ENCODING[mapping.encoding])
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1)              # hash and blank-line scan while DuckDB parses
    scanned = pool.submit(scan_file, raw.path, header.row)
    pool.shutdown(wait=False)
    try:
        con.execute(f"""CREATE TABLE {raw.table} AS SELECT * FROM read_csv($path, header = false, skip = $skip,
                            columns = {_columns_struct(len(header.columns))}, delim = $delim, quote = '"',
                            escape = '"', encoding = $encoding, auto_detect = false, store_rejects = true,
                            null_padding = false, max_line_size = 16777216)""", options)
        rejects = con.sql("""SELECT line::BIGINT AS line, any_value(csv_line) AS raw_record,
                                    string_agg(DISTINCT error_type, '; ') AS error,
                                    -- an open quote that swallowed the lines after it (not just a cut last line)
                                    bool_or(error_message ILIKE '%unterminated quote%'
                                            AND contains(rtrim(csv_line, chr(13) || chr(10)), chr(10))) AS unterminated
                             FROM reject_errors GROUP BY line ORDER BY line""").pl()
    except duckdb.Error as exc:
        text = str(exc)
        if "unicode" in text.lower() or "encoding" in text.lower():
            raise InputError(f"{raw.path}: not {mapping.encoding} text (wrong encoding? set format.encoding "
                             "in the mapping, e.g. latin-1)") from None
        raise InputError(f"{raw.path}: cannot be read as CSV: {scrub(text)}") from None
    finally:
        for table in ("reject_errors", "reject_scans"):
            with contextlib.suppress(duckdb.Error):        # never hide the failure that got us here
                con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        blanks: list[int] = []
        with contextlib.suppress(OSError):            # then load_raw hashes the file again and says why not
            raw.sha256, blanks = scanned.result()
    open_quote = rejects.filter(pl.col("unterminated"))
    if open_quote.height:      # the rest of the file would read as one field: never a single quarantined "row"
        raise InputError(f"{raw.path}: line {open_quote['line'][0]}: a quoted field opens here and is never closed "
                         "(unterminated \" quote), so every line after it would be read as part of one field; close "
                         "or remove that quote and run again")
    rejects = rejects.drop("unterminated")
    bad_encoding = rejects.filter(pl.col("error").str.contains("ENCODING"))
    if bad_encoding.height:
        raise InputError(f"{raw.path}: not {mapping.encoding} text at line {bad_encoding['line'][0]} (wrong "
                         "encoding? set format.encoding in the mapping, e.g. latin-1)")
    gaps = rejects.select(pl.lit(run_id).alias("run_id"), pl.lit(raw.file_index).alias("file_index"), "line",
                          "raw_record", pl.lit("unparseable_row").alias("reason"), pl.lit(True).alias("is_record"))
    if blanks:
        gaps = pl.concat([gaps, pl.DataFrame({"run_id": run_id, "file_index": raw.file_index, "line": blanks,
                                              "raw_record": None, "reason": None, "is_record": False},
                                             schema=gaps.schema)])
    if gaps.height:
        con.execute("INSERT INTO ingest_gaps BY NAME SELECT * FROM gaps")
    raw.gaps = gaps.height
    raw.rejects = rejects.height
    raw.records = con.execute(f"SELECT count(*) FROM {raw.table}").fetchall()[0][0]
    with raw.path.open("rb") as fh:
        fh.seek(-1, 2)
        if fh.read(1) != b"\n" and raw.records:
            raw.warnings.append("the file does not end with a line break: if it was still being written, its "
                                "last row may be cut")


# ---------------------------------------------------------------------------------------- XLSX

def _sheet_origin(path: Path, sheet: str | None) -> tuple[int, int]:
    """Row and column (1-based) where the sheet's used range starts: the reader starts there."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True)
        ws = wb[sheet] if sheet else wb.worksheets[0]
        origin = (ws.min_row or 1, ws.min_column or 1)
        wb.close()
        return origin
    except Exception:   # an odd workbook: assume A1, as the reader would
        return 1, 1


def _load_xlsx(con: duckdb.DuckDBPyConnection, raw: RawFile, mapping: Mapping, run_id: str) -> None:
    with raw.path.open("rb") as fh:
        head = fh.read(8)
    if not head.startswith(b"PK\x03\x04"):
        what = binary_kind(head + b"\x00") if not head[:1].isascii() or b"\x00" in head else "a text file"
        raise InputError(f"{raw.path}: not a readable .xlsx workbook (it is {what or 'not a workbook'})")
    try:
        archives.check_workbook(raw.path)          # a workbook is a zip: unpacked with limits first
    except archives.ArchiveTooLarge as exc:
        raise InputError(f"{raw.path}: {exc}") from None
    except zipfile.BadZipFile:
        raise InputError(f"{raw.path}: not a readable .xlsx workbook (a damaged zip)") from None
    try:
        kwargs = {"sheet_name": mapping.sheet} if mapping.sheet else {"sheet_id": 1}
        grid = pl.read_excel(raw.path, engine="calamine", has_header=False, infer_schema_length=0,
                             drop_empty_rows=False, **kwargs)
    except Exception as exc:
        raise InputError(f"{raw.path}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    first_row, first_col = _sheet_origin(raw.path, mapping.sheet)
    pad = [None] * (first_col - 1)            # positions count from column A, as the user sees them
    header = find_header([[*pad, *r] for r in grid.head(60).rows()], mapping, raw.path, first_row=first_row)
    raw.header, raw.first_row = header, header.row + 1
    raw.warnings += header.warnings
    width = len(header.columns) - len(pad)
    data = grid.slice(header.row - first_row + 1).select(grid.columns[:width])
    data = data.rename({c: f"c{i + len(pad) + 1}" for i, c in enumerate(data.columns)})
    for i in range(1, len(pad) + 1):
        data = data.with_columns(pl.lit(None, pl.String).alias(f"c{i}"))
    data = data.select([f"c{i}" for i in range(1, len(header.columns) + 1)]).with_row_index("__row")
    empty = data.filter(pl.all_horizontal(pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")
                                          for c in data.columns if c != "__row"))["__row"]
    data = data.filter(~pl.col("__row").is_in(empty.implode())).drop("__row")
    con.execute(f"CREATE TABLE {raw.table} AS SELECT * FROM data")
    if empty.len():                                   # empty rows are no records, but they are rows
        gaps = pl.DataFrame({"run_id": run_id, "file_index": raw.file_index,  # noqa: F841
                             "line": (empty.cast(pl.Int64) + raw.first_row), "raw_record": None, "reason": None,
                             "is_record": False},
                            schema={"run_id": pl.String, "file_index": pl.Int64, "line": pl.Int64,
                                    "raw_record": pl.String, "reason": pl.String, "is_record": pl.Boolean})
        con.execute("INSERT INTO ingest_gaps BY NAME SELECT * FROM gaps")
        raw.gaps = empty.len()
    raw.records = data.height


# ---------------------------------------------------------------------------------------- Parquet

def _load_parquet(con: duckdb.DuckDBPyConnection, raw: RawFile, mapping: Mapping, run_id: str) -> None:
    try:
        schema = con.execute("DESCRIBE SELECT * FROM read_parquet($path)", {"path": str(raw.path)}).fetchall()
    except duckdb.Error:
        raise InputError(f"{raw.path}: not a readable Parquet file") from None
    names = [row[0] for row in schema]
    header = find_header([names], Mapping(**{**mapping.__dict__, "skip_rows": None}), raw.path)
    raw.header, raw.first_row = header, 2
    exprs = []
    for i, (_, dtype, *_) in enumerate(schema, start=1):     # one expression per type class, never per value
        dtype = str(dtype).upper()
        if dtype.endswith("[]"):
            exprs.append(f"array_to_string(c{i}, ',') AS c{i}")
        elif dtype.startswith("TIMESTAMP"):
            exprs.append(f"CAST(CAST(c{i} AS DATE) AS VARCHAR) AS c{i}")
        else:
            exprs.append(f"CAST(c{i} AS VARCHAR) AS c{i}")
    aliases = ", ".join(f"c{i}" for i in range(1, len(names) + 1))
    try:
        con.execute(f"CREATE TABLE {raw.table} AS SELECT {', '.join(exprs)} FROM read_parquet($path) t({aliases})",
                    {"path": str(raw.path)})
    except duckdb.Error as exc:
        raise InputError(f"{raw.path}: not a readable Parquet file ({scrub(str(exc), 120)})") from None
    raw.records = con.execute(f"SELECT count(*) FROM {raw.table}").fetchall()[0][0]


# ---------------------------------------------------------------------------------------- X12 837P

X12_COLUMNS = ["claim_id", "line_number", "patient_id", "rendering_npi", "billing_npi", "payer", "date_of_service",
               "service_end_date", "procedure_code", "modifier_1", "modifier_2", "modifier_3", "modifier_4", "units",
               "minutes", "charge_amount", "place_of_service", "diagnosis_codes", "provider_discipline",
               "source_interchange"]


def _load_x12(con: duckdb.DuckDBPyConnection, raw: RawFile, mapping: Mapping, run_id: str) -> None:
    kind = transaction_kind(raw.path)
    if kind != "837":
        raise InputError(f"{raw.path}: X12 transaction set {kind} is not read as claim lines (837P claims are; "
                         "835 remittances are read next to them for the denial analysis)")
    from claimaudit.ingest.mapping import Mapping as _Mapping
    from claimaudit.x12.claims837 import iter_837

    raw.header = find_header([X12_COLUMNS], _Mapping(), raw.path)
    raw.has_src_row = True
    names = {c: f"c{i}" for i, c in enumerate(X12_COLUMNS, start=1)}
    con.execute(f"CREATE TABLE {raw.table} ({', '.join(f'{n} VARCHAR' for n in names.values())}, src_row BIGINT)")
    warnings: list[str] = []
    for records, rejects in iter_837(raw.path, warnings=warnings):     # piece by piece: flat memory
        if records.height:
            piece = records.select([pl.col(c).cast(pl.String).alias(names[c]) if c in records.columns  # noqa: F841
                                    else pl.lit(None, pl.String).alias(names[c]) for c in X12_COLUMNS]
                                   + [pl.col(LINE).cast(pl.Int64).alias("src_row")])
            con.execute(f"INSERT INTO {raw.table} SELECT * FROM piece")
            raw.records += records.height
        if rejects.height:
            gaps = rejects.select(pl.lit(run_id).alias("run_id"), pl.lit(raw.file_index).alias("file_index"),  # noqa: F841
                                  pl.col(LINE).cast(pl.Int64).alias("line"), "raw_record",
                                  pl.col("error").alias("reason"), pl.lit(True).alias("is_record"))
            con.execute("INSERT INTO ingest_gaps BY NAME SELECT * FROM gaps")
            raw.rejects += rejects.height
            raw.gaps += rejects.height
    raw.warnings += warnings


_LOADERS = {"csv": _load_csv, "xlsx": _load_xlsx, "parquet": _load_parquet, "x12": _load_x12}


def load_raw(con: duckdb.DuckDBPyConnection, path: str | Path, mapping: Mapping, *, run_id: str, file_index: int,
             source_file: str) -> RawFile:
    """Load one extract as text into its raw table. One clear InputError if it cannot be read at all."""
    path = Path(path)
    fmt = file_format(path)
    raw = RawFile(path, source_file, file_index, "x12-837" if fmt == "x12" else fmt, "",
                  path.stat().st_size, raw_table(run_id, file_index), header=None)  # type: ignore[arg-type]
    _LOADERS[fmt](con, raw, mapping, run_id)
    if not raw.sha256:                       # the CSV reader hashes the file while DuckDB parses it
        raw.sha256 = sha256_file(path)
    return raw


def used(sql: str, params: dict) -> dict:
    """The named parameters ``sql`` refers to (DuckDB refuses unused ones)."""
    return {k: v for k, v in params.items() if re.search(rf"\${re.escape(k)}\b", sql)}


def raw_rows_sql(raw: RawFile | dict, run_id_param: str = "$run_id") -> str:
    """The raw table's records with ``ord`` (their position in the table) and ``src_row`` (their row in
    the file). The loader and the data-quality step both read raw records through this one query."""
    table = raw.table if isinstance(raw, RawFile) else raw["raw_table"]
    index = raw.file_index if isinstance(raw, RawFile) else raw["file_index"]
    first = raw.first_row if isinstance(raw, RawFile) else raw["first_row"]
    src_row = raw.has_src_row if isinstance(raw, RawFile) else raw["has_src_row"]
    gaps = raw.gaps if isinstance(raw, RawFile) else raw["gaps"]
    # a record's position: rowids run on from the table's first (inside the loading transaction DuckDB
    # numbers a new table's rows from its transaction-local base, afterwards from 0)
    base = f"(SELECT rowid - (SELECT min(rowid) FROM {table}) AS ord, * FROM {table})"
    if src_row:
        return base
    if not gaps:                  # the usual file: no rejected records, no blank lines (no join to pay for)
        return f"(SELECT *, ord + {int(first)} AS src_row FROM {base})"
    # row = first row + ordinal + the rejected records and blank lines before it. Gap j (in row order)
    # sits after (row_j - first - (j - 1)) good records: an ASOF join finds how many gaps precede each record.
    return f"""(SELECT r.*, r.ord + {int(first)} + coalesce(g.n, 0) AS src_row
               FROM {base} r ASOF LEFT JOIN (
                   SELECT line - {int(first)} - (row_number() OVER (ORDER BY line) - 1) AS before,
                          row_number() OVER (ORDER BY line) AS n
                   FROM ingest_gaps WHERE run_id = {run_id_param} AND file_index = {int(index)}) g
               ON r.ord >= g.before)"""
