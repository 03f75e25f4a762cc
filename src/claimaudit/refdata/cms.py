"""Parsers for CMS NCCI reference files in the layouts CMS publishes them.

* Practitioner PTP part files ``ccipra-v###r#-f#`` (tab-delimited ``.txt`` or ``.xlsx``): a copyright
  preamble, then a header whose cells are wrapped over several lines ("Column 1", "Column 2",
  "*=in existence / prior to 1996", ...). Deletion date ``*`` means "not deleted".
* Practitioner MUE files ``MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY`` (``.csv`` or ``.xlsx``): a
  quoted multi-line copyright record, a header whose first cell is quoted across two lines, and MAI
  cells like ``2 Date of Service Edit: Policy``.

Both are Latin-1 with CRLF line ends. Parsing works on whole columns (Polars), never row by row.
Rows that do not parse are returned as bad rows with their physical line number and a reason;
every other row is kept, including several rows of the same pair over time.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from claimaudit.errors import ReferenceDataError

PTP_NAME = re.compile(r"ccipra[-_]?v(?P<major>\d{2})(?P<minor>\d)r(?P<rev>\d+)[-_]f(?P<part>\d+)", re.I)
PTP_OTHER_SETTING = re.compile(r"cci(?:oph|ohs|o)[a-z]*[-_]?v\d{3}", re.I)
MUE_NAME = re.compile(r"MCR_MUE_(?P<setting>[A-Za-z]+?)(?:Services)?_Eff_(?P<m>\d{2})-(?P<d>\d{2})-(?P<y>\d{4})", re.I)

PTP_FIELDS = ["column_1", "column_2", "prior_1996", "effective_date", "deletion_date",
              "modifier_indicator", "rationale"]
MUE_FIELDS = ["procedure_code", "mue_value", "mue_adjudication_text", "rationale"]

CODE_RE = r"^[0-9A-Z]{5}$"


@dataclass
class ParsedReference:
    kind: str                      # "ptp" | "mue"
    version: str                   # "v322r0" | "2026-07-01"
    part: str | None               # "f1".. for PTP
    coverage_start: date | None
    coverage_end: date | None
    rows: pl.DataFrame             # PTP_FIELDS / MUE_FIELDS typed, plus source_line
    bad_rows: list[dict] = field(default_factory=list)   # [{"line": n, "reason": "..."}]
    truncated: bool = False        # the file ends mid-row: rows after the cut are missing (never complete)

    @property
    def parts_in_name(self) -> int | None:
        return int(self.part[1:]) if self.part and self.part[1:].isdigit() else None


TRUNCATED = "truncated_row: the file ends mid-line"


def truncated_head(kind: str) -> ReferenceDataError:
    return ReferenceDataError(f"the file ends before its {kind} header is complete (a truncated download?): "
                              "download it again")


def ptp_version_from_name(name: str) -> tuple[str, str, date, date] | None:
    """``ccipra-v322r0-f1`` -> ("v322r0", "f1", 2026-07-01, 2026-09-30).

    NCCI version NN.Q is the release for calendar year 1994 + NN, quarter Q + 1 (v31.0 = January 2025).
    """
    m = PTP_NAME.search(name)
    if not m:
        return None
    year, quarter = 1994 + int(m["major"]), int(m["minor"]) + 1
    if not 1 <= quarter <= 4:
        return None
    start = date(year, 3 * quarter - 2, 1)
    end = (date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)) - timedelta(days=1)
    return f"v{m['major']}{m['minor']}r{m['rev']}", f"f{m['part']}", start, end


def mue_version_from_name(name: str) -> tuple[str, str, date] | None:
    m = MUE_NAME.search(name)
    if not m:
        return None
    try:
        eff = date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return None
    return eff.isoformat(), m["setting"].lower(), eff


def decode(data: bytes) -> str:
    """CMS files are Latin-1 (cp1252 in practice); a UTF-8 BOM is dropped. CRLF becomes LF."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _norm(cell: str | None) -> str:
    return re.sub(r"\s+", " ", cell or "").strip().lower()


# ---------------------------------------------------------------- PTP

def _ptp_header_end(first_cells: pl.DataFrame) -> int:
    """Index of the first data row: after the 'Column 1 | Column 2' header and its wrapped lines."""
    c0 = [_norm(v) for v in first_cells["c0"].to_list()]     # at most 50 preamble rows
    c1 = [_norm(v) for v in first_cells["c1"].to_list()]
    for i, (a, b) in enumerate(zip(c0, c1, strict=True)):
        if a.replace(" ", "") == "column1" and b.replace(" ", "") == "column2":
            j = i + 1
            while j < len(c0) and c0[j] == "" and c1[j] == "":   # wrapped header lines
                j += 1
            return j
    raise ReferenceDataError("no 'Column 1 / Column 2' header found in the first lines: not a CMS PTP file")


def _parse_ptp_lines(lines: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """``lines`` has columns line (1-based physical line), c0..c6 (strings), n_fields, truncated."""
    s = lambda c: pl.col(c).str.strip_chars()  # noqa: E731
    typed = lines.with_columns(
        column_1=s("c0").str.to_uppercase(),
        column_2=s("c1").str.to_uppercase(),
        prior_1996=s("c2") == "*",
        effective_date=s("c3").str.strptime(pl.Date, "%Y%m%d", strict=False),
        deletion_raw=s("c4"),
        deletion_date=s("c4").str.strptime(pl.Date, "%Y%m%d", strict=False),
        modifier_indicator=s("c5").cast(pl.Int8, strict=False),
        rationale=s("c6"),
    )
    reason = (
        pl.when(pl.col("truncated")).then(pl.lit(TRUNCATED))
        .when(pl.col("n_fields") < 6).then(pl.format("too_few_fields: {} of 7", pl.col("n_fields")))
        .when(~pl.col("column_1").str.contains(CODE_RE).fill_null(False)).then(pl.lit("bad_code:column_1"))
        .when(~pl.col("column_2").str.contains(CODE_RE).fill_null(False)).then(pl.lit("bad_code:column_2"))
        .when(pl.col("effective_date").is_null()).then(pl.lit("bad_date:effective_date"))
        .when(pl.col("deletion_date").is_null() & (pl.col("deletion_raw") != "*")).then(pl.lit("bad_date:deletion_date"))
        .when(~pl.col("modifier_indicator").is_in([0, 1, 9]).fill_null(False)).then(pl.lit("bad_modifier_indicator"))
    )
    typed = typed.with_columns(reason=reason)
    bad = typed.filter(pl.col("reason").is_not_null()).select("line", "reason")
    good = typed.filter(pl.col("reason").is_null()).select(
        *PTP_FIELDS[:5], pl.col("modifier_indicator"), "rationale", source_line=pl.col("line"))
    return good, bad.to_dicts()


def parse_ptp_text(text: str) -> tuple[pl.DataFrame, list[dict]]:
    """Parse the tab-delimited practitioner PTP text (already decoded)."""
    ends_cleanly = text.endswith("\n")
    raw = pl.DataFrame({"raw": text.split("\n")}).with_row_index("line", offset=1)
    if ends_cleanly:
        raw = raw.head(raw.height - 1)                      # the empty string after the last newline
    raw = raw.with_columns(fields=pl.col("raw").str.split("\t"))
    raw = raw.with_columns(n_fields=pl.col("fields").list.len(),
                           truncated=(pl.col("line") == raw.height) & (not ends_cleanly))
    cols = raw.with_columns([pl.col("fields").list.get(i, null_on_oob=True).alias(f"c{i}") for i in range(7)])
    try:
        header_end = _ptp_header_end(cols.head(50))
    except ReferenceDataError:
        if not ends_cleanly and raw.height < 50:
            raise truncated_head("PTP") from None
        raise
    body = cols.slice(header_end).filter(pl.col("raw").str.strip_chars() != "")
    return _parse_ptp_lines(body)


def parse_ptp_grid(grid: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """Parse a PTP sheet read as strings (xlsx); row numbers are the sheet's 1-based rows."""
    width = grid.width
    grid = grid.rename({c: f"c{i}" for i, c in enumerate(grid.columns)})
    for i in range(width, 7):
        grid = grid.with_columns(pl.lit(None, pl.String).alias(f"c{i}"))
    grid = grid.with_row_index("line", offset=1).with_columns(
        n_fields=pl.sum_horizontal([pl.col(f"c{i}").is_not_null().cast(pl.Int32) for i in range(6)]).clip(6, 7)
        .cast(pl.UInt32), truncated=pl.lit(False))
    header_end = _ptp_header_end(grid.head(50).fill_null(""))
    body = grid.slice(header_end).filter(~pl.all_horizontal(pl.col(f"c{i}").is_null() for i in range(7)))
    return _parse_ptp_lines(body)


# ---------------------------------------------------------------- MUE

def _mue_header_index(c0: list[str], c1: list[str]) -> int:
    for i, (a, b) in enumerate(zip(c0, c1, strict=True)):
        a, b = _norm(a).replace(" ", ""), _norm(b)
        if "hcpcs" in a and "cptcode" in a and "mue" in b:
            return i
    raise ReferenceDataError("no 'HCPCS/CPT Code | ... MUE Values' header found: not a CMS MUE file")


def _parse_mue_records(rec: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """``rec`` has columns line, c0..c3 (strings), n_fields."""
    typed = rec.with_columns(
        procedure_code=pl.col("c0").str.strip_chars().str.to_uppercase(),
        mue_value=pl.col("c1").str.strip_chars().cast(pl.Int32, strict=False),
        mue_adjudication_text=pl.col("c2").str.strip_chars(),
        mue_adjudication_indicator=pl.col("c2").str.strip_chars().str.extract(r"^([123])\b", 1).cast(pl.Int8),
        rationale=pl.col("c3").str.strip_chars(),
    )
    reason = (
        pl.when(pl.col("n_fields") < 3).then(pl.format("too_few_fields: {} of 4", pl.col("n_fields")))
        .when(~pl.col("procedure_code").str.contains(CODE_RE).fill_null(False)).then(pl.lit("bad_code:procedure_code"))
        .when(pl.col("mue_value").is_null() | (pl.col("mue_value") < 0)).then(pl.lit("bad_value:mue_value"))
        .when(pl.col("mue_adjudication_indicator").is_null()).then(pl.lit("bad_value:mue_adjudication_indicator"))
    )
    typed = typed.with_columns(reason=reason)
    bad = typed.filter(pl.col("reason").is_not_null()).select("line", "reason").to_dicts()
    good = typed.filter(pl.col("reason").is_null()).select(
        "procedure_code", "mue_value", "mue_adjudication_indicator", "mue_adjudication_text", "rationale",
        source_line=pl.col("line"))
    return good, bad


def parse_mue_text(text: str) -> tuple[pl.DataFrame, list[dict]]:
    """Parse the MUE CSV (already decoded, LF line ends); quoted cells may span lines.

    A file that does not end with a line break was cut: its last record is reported as
    ``truncated_row`` (never loaded with a shortened value), and a cut before the header is refused."""
    ends_cleanly = text.endswith("\n")
    try:
        frame = pl.read_csv(io.StringIO(text), has_header=False, infer_schema=False, quote_char='"',
                            truncate_ragged_lines=True, missing_columns="insert", new_columns=["c0", "c1", "c2", "c3"])
    except pl.exceptions.PolarsError:
        if not ends_cleanly:
            raise truncated_head("MUE") from None
        raise ReferenceDataError("not a CMS MUE file in the published CSV layout (its records cannot be "
                                 "split into the four MUE columns)") from None
    if frame.width < 4:
        frame = frame.with_columns([pl.lit(None, pl.String).alias(f"c{i}") for i in range(frame.width, 4)])
    frame = frame.select("c0", "c1", "c2", "c3")
    # physical line of each record = 1 + lines used by the records before it (quoted newlines count)
    newlines = pl.sum_horizontal(pl.col(c).fill_null("").str.count_matches("\n") for c in frame.columns)
    frame = frame.with_columns(span=newlines + 1)
    frame = frame.with_columns(line=(pl.col("span").cum_sum() - pl.col("span") + 1).cast(pl.UInt32),
                               n_fields=pl.sum_horizontal(pl.col(f"c{i}").is_not_null().cast(pl.Int32) for i in range(4)))
    head = frame.head(50)
    try:
        idx = _mue_header_index(head["c0"].to_list(), head["c1"].to_list())
    except ReferenceDataError:
        if not ends_cleanly and frame.height < 50:
            raise truncated_head("MUE") from None
        raise
    body = frame.slice(idx + 1).filter(~pl.all_horizontal(pl.col(f"c{i}").fill_null("").str.strip_chars() == ""
                                                          for i in range(4)))
    good, bad = _parse_mue_records(body)
    if not ends_cleanly and body.height:
        last = body["line"][-1]
        good = good.filter(pl.col("source_line") != last)
        bad = [b for b in bad if b["line"] != last] + [{"line": last, "reason": TRUNCATED}]
    return good, bad


def parse_mue_grid(grid: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    grid = grid.rename({c: f"c{i}" for i, c in enumerate(grid.columns)})
    for i in range(grid.width, 4):
        grid = grid.with_columns(pl.lit(None, pl.String).alias(f"c{i}"))
    grid = grid.select("c0", "c1", "c2", "c3").with_row_index("line", offset=1).with_columns(
        n_fields=pl.sum_horizontal(pl.col(f"c{i}").is_not_null().cast(pl.Int32) for i in range(4)))
    head = grid.head(50).fill_null("")
    idx = _mue_header_index(head["c0"].to_list(), head["c1"].to_list())
    body = grid.slice(idx + 1).filter(pl.col("n_fields") > 0)
    return _parse_mue_records(body)


def sniff_kind(text_head: str) -> str | None:
    """Tell PTP from MUE by content when the file name does not say."""
    low = text_head.lower()
    if "column 1" in low and "column 2" in low and "modifier" in low:
        return "ptp"
    if "mue" in low and "hcpcs" in low:
        return "mue"
    return None


# ---------------------------------------------------------------- therapy code list, thresholds

THERAPY_NAME = re.compile(r"therapy", re.I)
YEAR_IN_NAME = re.compile(r"(?<!\d)(20\d{2})(?!\d)")
THRESHOLD_FIELDS = ["year", "kx_pt_slp", "kx_ot", "tmr"]


def therapy_header(cells: list[str]) -> tuple[int, int] | None:
    """(code column, designation column) when ``cells`` is the header of a therapy code list."""
    low = [_norm(c) for c in cells]
    code = next((i for i, c in enumerate(low) if c in {"hcpcs", "cpt", "code", "hcpcs code", "cpt code",
                                                         "hcpcs/cpt code", "hcpcs/cpt", "cpt/hcpcs code"}
                 or (("hcpcs" in c or "cpt" in c) and "code" in c and "desc" not in c)), None)
    designation = next((i for i, c in enumerate(low) if i != code and ("designation" in c or "therapy" in c
                                                                         or "always" in c)), None)
    return (code, designation) if code is not None and designation is not None else None


def parse_therapy_codes(grid: pl.DataFrame) -> tuple[pl.DataFrame, list[dict]]:
    """The CMS annual therapy code list: a code column and a designation column whose value starts with
    "always" or "sometimes" (therapy); rows with any other designation are reported."""
    grid = grid.with_row_index("line", offset=1) if "line" not in grid.columns else grid
    cols = [c for c in grid.columns if c != "line"]
    headers = [(i, therapy_header([c or "" for c in row])) for i, row in enumerate(grid.head(30).select(cols).rows())]
    index, found = next(((i, h) for i, h in headers if h), (None, None))
    if found is None:
        raise ReferenceDataError("no header with a code column and a therapy designation column found: not a "
                                 "CMS therapy code list")
    code_col, des_col = cols[found[0]], cols[found[1]]
    body = grid.slice(index + 1).select(
        "line", procedure_code=pl.col(code_col).str.strip_chars().str.to_uppercase(),
        designation=pl.col(des_col).str.strip_chars().str.to_lowercase().str.extract(r"^(always|sometimes)", 1))
    body = body.filter(pl.col("procedure_code").is_not_null() & (pl.col("procedure_code") != ""))
    bad = body.filter(~pl.col("procedure_code").str.contains(CODE_RE) | pl.col("designation").is_null())
    good = body.join(bad.select("line"), on="line", how="anti").select(
        "procedure_code", "designation", source_line=pl.col("line").cast(pl.Int32))
    return good, [{"line": r["line"], "reason": "bad_code" if not r["procedure_code"] or len(r["procedure_code"]) != 5
                   else "designation is not always/sometimes therapy"} for r in bad.iter_rows(named=True)]


def parse_thresholds(text: str) -> tuple[pl.DataFrame, list[dict]]:
    """KX / targeted-review thresholds by year, in the layout of data/reference/therapy_thresholds.csv."""
    try:
        frame = pl.read_csv(io.StringIO(text), infer_schema=False)
    except pl.exceptions.PolarsError:
        raise ReferenceDataError("not a readable CSV table") from None
    missing = [c for c in THRESHOLD_FIELDS if c not in frame.columns]
    if missing:
        raise ReferenceDataError(f"missing column(s) {', '.join(missing)} (the layout of therapy_thresholds.csv)")
    exact = r"^[0-9]+(\.[0-9]{1,2})?$"
    frame = frame.with_row_index("line", offset=2)
    ok = pl.col("year").str.contains(r"^(19|20)[0-9]{2}$") & pl.all_horizontal(
        pl.col(c).str.strip_chars().str.contains(exact) for c in THRESHOLD_FIELDS[1:])
    bad = frame.filter(~ok.fill_null(False))
    good = frame.filter(ok.fill_null(False)).select(
        pl.col("year").cast(pl.Int32), *[pl.col(c).str.strip_chars().cast(pl.Decimal(12, 2)) for c in THRESHOLD_FIELDS[1:]],
        source=pl.col("source") if "source" in frame.columns else pl.lit(None, pl.String),
        source_line=pl.col("line").cast(pl.Int32))
    return good, [{"line": r["line"], "reason": "bad year or amount"} for r in bad.iter_rows(named=True)]
