"""Read claim extracts (CSV, Parquet, XLSX) as strings, with the spreadsheet row of each record.

Nothing is inferred: every cell arrives as text and normalize.py types it, so NPIs, codes and
place-of-service "02" keep their exact characters. A CSV record the parser cannot split is not
dropped: it comes back in ``rejects`` with its line number and the raw text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from claimaudit.errors import InputError
from claimaudit.ingest.mapping import Mapping

LINE = "__line"          # 1-based row of the record in the file as a spreadsheet shows it (header = 1)
FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}


@dataclass
class RawFile:
    path: Path
    file_format: str
    sha256: str
    bytes: int
    frame: pl.DataFrame          # all String columns + LINE
    rejects: pl.DataFrame        # LINE, raw_record, error
    warnings: list[str] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _read_csv(path: Path, mapping: Mapping) -> tuple[pl.DataFrame, pl.DataFrame]:
    options = ["all_varchar = true", "header = true", "store_rejects = true", "quote = '\"'",
               "escape = '\"'", f"skip = {mapping.skip_rows}", "null_padding = false"]
    if mapping.delimiter:
        options.append(f"delim = '{mapping.delimiter}'")
    if mapping.encoding.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        options.append(f"encoding = '{mapping.encoding}'")
    con = duckdb.connect()      # a private connection: the rejects tables belong to this file alone
    try:
        frame = con.sql(f"SELECT * FROM read_csv(?, {', '.join(options)})", params=[str(path)]).pl()
        rejects = con.sql("""
            SELECT line::BIGINT AS line, any_value(csv_line) AS raw_record,
                   string_agg(DISTINCT error_type, '; ') AS error
            FROM reject_errors GROUP BY line ORDER BY line""").pl()
    except duckdb.Error as exc:
        text = str(exc)
        if "unicode" in text.lower() or "encoding" in text.lower():
            raise InputError(f"{path}: not {mapping.encoding} text (wrong encoding? set format.encoding "
                             "in the mapping, e.g. latin-1)") from None
        raise InputError(f"{path}: cannot be read as CSV: {_first_line(text)}") from None
    finally:
        con.close()
    bad_encoding = rejects.filter(pl.col("error").str.contains("ENCODING"))
    if bad_encoding.height:
        raise InputError(f"{path}: not {mapping.encoding} text at line {bad_encoding['line'][0]} (wrong encoding? "
                         "set format.encoding in the mapping, e.g. latin-1)")
    # Spreadsheet row of each good record: its ordinal among good records, shifted past the
    # rejected records before it (rejects carry their own line numbers).
    reject_lines = rejects["line"].sort()
    thresholds = reject_lines - 1 - pl.Series(range(1, len(reject_lines) + 1))   # good records before each reject
    ordinal = pl.Series(range(1, frame.height + 1), dtype=pl.Int64)
    before = thresholds.search_sorted(ordinal, side="left") if len(thresholds) else pl.Series([0] * frame.height)
    frame = frame.with_columns(pl.Series(LINE, ordinal + 1 + before.cast(pl.Int64) + mapping.skip_rows))
    rejects = rejects.rename({"line": LINE})
    return frame, rejects


def _stringify(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            exprs.append(pl.col(name))
        elif isinstance(dtype, pl.List):
            exprs.append(pl.col(name).cast(pl.List(pl.String)).list.join(",").alias(name))
        elif dtype.is_temporal():
            exprs.append(pl.col(name).dt.date().cast(pl.String).alias(name) if dtype != pl.Date
                         else pl.col(name).cast(pl.String))
        else:
            exprs.append(pl.col(name).cast(pl.String))
    return frame.select(exprs)


def _empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema={LINE: pl.Int64, "raw_record": pl.String, "error": pl.String})


def is_x12(path: Path) -> bool:
    """X12 is recognised by content (an interchange starts with ISA), whatever the file is called."""
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        head = fh.read(512).lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"ISA") and len(head) > 3 and not chr(head[3]).isalnum()


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


def _read_x12(path: Path, size: int) -> RawFile:
    kind = transaction_kind(path)
    if kind != "837":
        raise InputError(f"{path}: X12 transaction set {kind} is not read as claim lines (837P claims are; "
                         "835 remittances are read next to them for the denial analysis)")
    from claimaudit.x12.claims837 import read_837

    frame, rejects, warnings = read_837(path)
    return RawFile(path, "x12-837", sha256_file(path), size, frame, rejects, warnings)


def read_raw(path: str | Path, mapping: Mapping) -> RawFile:
    """Read one extract as strings. Raises InputError with one clear line if it cannot be read at all."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name the extract files")
    fmt = "x12" if is_x12(path) else FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unsupported file type {path.suffix or '(none)'} (expected .csv, .parquet, .xlsx "
                         "or an X12 837P interchange)")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    if fmt == "x12":
        return _read_x12(path, size)
    if fmt == "csv":
        frame, rejects = _read_csv(path, mapping)
        if frame.width == 1 and frame.height == 0 and not rejects.height and not path.read_text(
                encoding="utf-8", errors="replace").strip():
            raise InputError(f"{path}: the file is empty")
    elif fmt == "parquet":
        try:
            frame = _stringify(pl.read_parquet(path))
        except Exception as exc:  # polars raises several error types for a broken file
            raise InputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
        frame = frame.with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
        rejects = _empty_rejects()
    else:
        try:
            kwargs = {"sheet_name": mapping.sheet} if mapping.sheet else {"sheet_id": 1}
            frame = pl.read_excel(path, engine="calamine", infer_schema_length=0, **kwargs)
        except Exception as exc:
            raise InputError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__})") from None
        frame = _stringify(frame).with_row_index(LINE, offset=2).with_columns(pl.col(LINE).cast(pl.Int64))
        rejects = _empty_rejects()
    return RawFile(path, fmt, sha256_file(path), size, frame, rejects)
