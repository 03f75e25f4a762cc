"""Import CMS reference files into the warehouse, versioned, idempotently (by SHA-256).

Version selection for a date of service (see docs/reference-data.md):
* PTP: each CMS release carries every edit's history (effective and deletion dates), so a release
  speaks for all dates up to the end of its quarter. A DOS uses the loaded release with the
  earliest quarter end on or after the DOS; a DOS after the newest release's quarter is unchecked.
* MUE: a file covers DOS from its effective date until the next loaded MUE file's effective date.
* The bundled starter set is used for a kind only while no CMS file of that kind is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from claimaudit import archives
from claimaudit.errors import ReferenceDataError
from claimaudit.refdata import cms
from claimaudit.resources import resource
from claimaudit.warehouse import one

STARTER_DIR = ("data", "reference", "starter")
STARTER_MANIFEST = "manifest.json"


@dataclass
class ImportResult:
    source: str
    kind: str
    version: str
    part: str | None
    rows_loaded: int
    rows_bad: int
    skipped: bool                   # already imported (same SHA-256)
    bad_rows: list[dict]
    replaced: str | None = None     # the earlier file of the same kind, version and part this one replaces
    truncated: bool = False

    def line(self) -> str:
        what = f"{self.kind.upper()} {self.version}" + (f" {self.part}" if self.part else "")
        if self.skipped:
            return f"{self.source}: {what} already imported (same content), skipped"
        bad = f", {self.rows_bad} bad row(s): " + "; ".join(
            f"line {b['line']} {b['reason']}" for b in self.bad_rows[:5]) if self.rows_bad else ""
        cut = "; the file is TRUNCATED (it ends mid-row): download it again" if self.truncated else ""
        replaced = f"; replaces {self.replaced}" if self.replaced else ""
        return f"{self.source}: {what}: {self.rows_loaded} rows loaded{bad}{cut}{replaced}"


def zip_parts(names: list[str]) -> dict[str, int]:
    """PTP version -> how many part files a CMS zip holds of it (the release's part count)."""
    parts: dict[str, set[str]] = {}
    for n in names:
        parsed = cms.ptp_version_from_name(Path(n).name)
        if parsed:
            parts.setdefault(parsed[0], set()).add(parsed[1])
    return {v: len(p) for v, p in parts.items()}


def _members(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of each reference file in ``path``; a zip yields its .txt/.csv/.xlsx members,
    each unpacked as a bounded stream (archives.py: a zip bomb is refused, not decompressed).

    CMS zips carry the same table as .txt and .xlsx: the text file wins, so a table is never loaded twice.
    """
    if not path.exists():
        raise ReferenceDataError(f"{path}: no such file")
    try:
        if path.suffix.lower() != ".zip":
            if path.stat().st_size > archives.REFERENCE_LIMIT:
                raise archives.ArchiveTooLarge(f"{path.stat().st_size / archives.MB:,.0f} MB is more than a CMS "
                                               f"reference file holds (limit {archives.REFERENCE_LIMIT // archives.MB} MB)")
            data = path.read_bytes()
            if data[:4] == b"PK\x03\x04" and path.suffix.lower() == ".xlsx":
                with zipfile.ZipFile(path) as zf:            # a workbook is a zip too: bounded as well
                    for info in archives.members(zf):
                        archives.read_member(zf, info, limit=archives.REFERENCE_LIMIT,
                                             ratio=archives.WORKBOOK_RATIO, keep=False)
            return [(path.name, data)]
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in archives.members(zf) if not i.filename.startswith("__MACOSX")]
            by_stem: dict[str, zipfile.ZipInfo] = {}
            for info in sorted(infos, key=lambda i: i.filename):
                suffix = Path(info.filename).suffix.lower()
                if suffix not in {".txt", ".csv", ".xlsx"}:
                    continue
                stem = Path(info.filename).stem.lower()
                if stem not in by_stem or suffix in {".txt", ".csv"}:
                    by_stem[stem] = info
            members = [(Path(info.filename).name,
                        archives.read_member(zf, info, limit=archives.REFERENCE_LIMIT, ratio=archives.REFERENCE_RATIO))
                       for info in by_stem.values()]
    except zipfile.BadZipFile:
        raise ReferenceDataError(f"{path}: not a readable zip archive") from None
    except archives.ArchiveTooLarge as exc:
        raise ReferenceDataError(f"{path}: {exc}") from None
    if not members:
        raise ReferenceDataError(f"{path}: the zip holds no .txt, .csv or .xlsx reference file")
    return members


def _read_grid(name: str, data: bytes) -> pl.DataFrame:
    try:
        return pl.read_excel(io.BytesIO(data), engine="calamine", has_header=False, infer_schema_length=0,
                             raise_if_empty=True)
    except Exception as exc:  # calamine raises several types for a broken workbook
        raise ReferenceDataError(f"{name}: not a readable .xlsx workbook ({type(exc).__name__})") from None


def parse_member(name: str, data: bytes, *, version: str | None = None) -> cms.ParsedReference:
    """Detect the kind and version of one reference file and parse it."""
    suffix = Path(name).suffix.lower()
    if suffix not in {".txt", ".csv", ".xlsx"}:
        raise ReferenceDataError(f"{name}: unsupported reference file type {suffix or '(none)'} "
                                 "(expected .txt, .csv, .xlsx or a .zip of them)")
    if cms.PTP_OTHER_SETTING.search(name):
        raise ReferenceDataError(f"{name}: only the practitioner PTP tables (ccipra-...) are supported")
    grid = _read_grid(name, data) if suffix == ".xlsx" else None
    text = cms.decode(data) if grid is None else None
    head = text[:4000] if text is not None else " ".join(
        str(v) for row in grid.head(12).iter_rows() for v in row if v is not None)
    ptp_name, mue_name = cms.ptp_version_from_name(name), cms.mue_version_from_name(name)
    if not ptp_name and not mue_name:
        other = _parse_other(name, text, grid, version)        # therapy code list, thresholds
        if other is not None:
            return other
    kind = "ptp" if ptp_name else "mue" if mue_name else cms.sniff_kind(head)
    if kind is None:
        raise ReferenceDataError(f"{name}: neither a CMS PTP nor an MUE file (name and header not recognised)")
    sniffed = cms.sniff_kind(head)
    if sniffed and sniffed != kind:
        raise ReferenceDataError(f"{name}: the name says {kind.upper()} but the content is a {sniffed.upper()} file")
    try:
        if kind == "ptp":
            rows, bad = cms.parse_ptp_grid(grid) if grid is not None else cms.parse_ptp_text(text)
            if ptp_name:
                ver, part, start, end = ptp_name
            elif version:
                parsed = cms.ptp_version_from_name(f"ccipra-{version}-f1")
                if not parsed:
                    raise ReferenceDataError(f"{name}: --version {version!r} is not a PTP version like v322r0")
                ver, _, start, end = parsed
                part = "f1"
            else:
                raise ReferenceDataError(f"{name}: cannot tell the PTP version from the file name; keep the CMS "
                                         "name (ccipra-v322r0-f1.txt) or pass --version v322r0")
        else:
            rows, bad = cms.parse_mue_grid(grid) if grid is not None else cms.parse_mue_text(text)
            if mue_name:
                ver, setting, start = mue_name
                if setting != "practitioner":
                    raise ReferenceDataError(f"{name}: only the practitioner MUE table is supported (got {setting})")
            elif version:
                try:
                    start = date.fromisoformat(version)
                except ValueError:
                    raise ReferenceDataError(f"{name}: --version for an MUE file is its effective date, "
                                             "e.g. 2026-07-01") from None
                ver = start.isoformat()
            else:
                raise ReferenceDataError(f"{name}: cannot tell the MUE effective date from the file name; keep the "
                                         "CMS name (MCR_MUE_PractitionerServices_Eff_07-01-2026.csv) or pass "
                                         "--version 2026-07-01")
            part, end = None, None
    except ReferenceDataError as exc:
        msg = str(exc)
        raise ReferenceDataError(msg if msg.startswith(name) else f"{name}: {msg}") from None
    truncated = any(b["reason"] == cms.TRUNCATED for b in bad)
    return cms.ParsedReference(kind, ver, part, start, end, rows, bad, truncated)


DEFAULT_PTP_PARTS = 4        # practitioner PTP releases come as f1..f4 unless the zip or the user says otherwise


def _parse_other(name: str, text: str | None, grid: pl.DataFrame | None,
                 version: str | None) -> cms.ParsedReference | None:
    """The KX threshold table (therapy_thresholds.csv layout) or a CMS annual therapy code list; None
    when the file is neither."""
    first = (text or "").split("\n", 1)[0].lower()
    try:
        if text is not None and "year" in first and "kx_pt_slp" in first:
            rows, bad = cms.parse_thresholds(text)
            years = rows["year"].to_list()
            ver = version or (f"{min(years)}-{max(years)}" if years else Path(name).stem)
            return cms.ParsedReference("thresholds", ver, None, None, None, rows, bad)
        if grid is None:
            try:
                grid = pl.read_csv(io.StringIO(text or ""), has_header=False, infer_schema=False,
                                   truncate_ragged_lines=True, n_rows=None)
            except pl.exceptions.PolarsError:
                return None
        top = grid.head(30).rows()
        if not any(cms.therapy_header([str(c) if c is not None else "" for c in row]) for row in top):
            return None
        if not cms.THERAPY_NAME.search(name) and not version:
            raise ReferenceDataError("looks like a therapy code list: name it like the CMS file (it says "
                                     "'therapy' and its year) or pass --version YEAR")
        year = version or (cms.YEAR_IN_NAME.search(name) or [None, None])[1]
        if not year or not str(year).isdigit():
            raise ReferenceDataError("cannot tell the therapy code list's year from the file name: pass --version YEAR")
        rows, bad = cms.parse_therapy_codes(grid)
        return cms.ParsedReference("therapy", str(year), None, date(int(year), 1, 1), None, rows, bad)
    except ReferenceDataError as exc:
        raise ReferenceDataError(f"{name}: {exc}") from None


def _store(con: duckdb.DuckDBPyConnection, name: str, data: bytes, parsed: cms.ParsedReference,
           *, is_starter: bool, version_label: str | None = None, parts_expected: int | None = None,
           parts_source: str | None = None) -> str | None:
    """Insert one parsed file (inside the caller's transaction). A file of the same kind, version and
    part with other content is a corrected re-download: it is marked replaced and its rows removed.
    Returns a description of the replaced file, if any."""
    sha = hashlib.sha256(data).hexdigest()
    version = version_label or parsed.version
    con.execute("DELETE FROM ref_files WHERE sha256 = ? AND replaced_by IS NOT NULL", [sha])   # re-imported old content
    file_id = one(con, "SELECT nextval('ref_file_ids')")[0]
    previous = con.execute("""SELECT file_id, source_name, imported_at, sha256 FROM ref_files
                              WHERE kind = ? AND version = ? AND part IS NOT DISTINCT FROM ? AND replaced_by IS NULL
                                AND is_starter = ?""", [parsed.kind, version, parsed.part, is_starter]).fetchall()
    con.execute("""INSERT INTO ref_files (file_id, kind, setting, version, part, coverage_start, coverage_end,
                       is_starter, source_name, sha256, rows_loaded, rows_bad, bad_rows, imported_at, parts_expected,
                       parts_source, truncated)
                   VALUES (?, ?, 'practitioner', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?)""",
                [file_id, parsed.kind, version, parsed.part, parsed.coverage_start, parsed.coverage_end, is_starter,
                 name, sha, parsed.rows.height, len(parsed.bad_rows), json.dumps(parsed.bad_rows), parts_expected,
                 parts_source, parsed.truncated])
    rows = parsed.rows.with_columns(file_id=pl.lit(file_id, pl.Int32))  # noqa: F841 (queried by name)
    if parsed.kind == "ptp":
        con.execute("INSERT INTO ref_ptp SELECT file_id, column_1, column_2, prior_1996, effective_date, "
                    "deletion_date, modifier_indicator, rationale, source_line FROM rows")
    elif parsed.kind == "mue":
        con.execute("INSERT INTO ref_mue SELECT file_id, procedure_code, mue_value, mue_adjudication_indicator, "
                    "mue_adjudication_text, rationale, source_line FROM rows")
    elif parsed.kind == "therapy":
        con.execute("INSERT INTO ref_therapy_codes SELECT file_id, procedure_code, designation, source_line FROM rows")
    else:
        con.execute("INSERT INTO ref_thresholds SELECT file_id, year, kx_pt_slp, kx_ot, tmr, source, source_line "
                    "FROM rows")
    replaced = None
    for old_id, old_name, imported_at, old_sha in previous:
        table = {"ptp": "ref_ptp", "mue": "ref_mue", "therapy": "ref_therapy_codes", "thresholds": "ref_thresholds"}
        con.execute(f"DELETE FROM {table[parsed.kind]} WHERE file_id = ?", [old_id])      # a closed set
        con.execute("UPDATE ref_files SET replaced_by = ?, replaced_at = now() WHERE file_id = ?", [file_id, old_id])
        replaced = f"{old_name} imported {imported_at:%Y-%m-%d %H:%M} (sha256 {old_sha[:12]}...)"
    return replaced


def import_paths(con: duckdb.DuckDBPyConnection, paths: list[str | Path], *, version: str | None = None,
                 parts: int | None = None) -> list[ImportResult]:
    """Import CMS PTP/MUE files (.txt .csv .xlsx .zip), all or nothing: every file is read and parsed
    first, then all are stored in one transaction, so a file that fails leaves the warehouse as it was.
    Re-importing the same content is a no-op. ``parts``: how many part files the PTP release has
    (default: as many as its CMS zip holds, else 4)."""
    parsed_all: list[tuple[str, str, bytes, cms.ParsedReference, int, str]] = []
    results: list[ImportResult] = []
    skipped_ptp: set[str] = set()
    current = {r[0]: r[1:] for r in con.execute(
        "SELECT sha256, kind, version, part FROM ref_files WHERE replaced_by IS NULL").fetchall()}
    for path in map(Path, paths):
        members = _members(path)
        in_zip = zip_parts([n for n, _ in members]) if path.suffix.lower() == ".zip" else {}
        for name, data in members:
            source = name if name == path.name else f"{path.name}:{name}"
            sha = hashlib.sha256(data).hexdigest()
            if sha in current:              # imported before, or earlier in this import
                kind, ver, part = current[sha]
                results.append(ImportResult(source, kind, ver, part, 0, 0, True, []))
                if kind == "ptp":
                    skipped_ptp.add(ver)
                continue
            try:
                parsed = parse_member(name, data, version=version)
                if parsed.rows.height == 0:
                    raise ReferenceDataError(f"{name}: no data rows could be read")
            except ReferenceDataError as exc:
                done = f"; nothing was imported (the {len(paths)} files of one import are imported together)" \
                    if len(paths) > 1 or len(members) > 1 else ""
                raise ReferenceDataError(f"{path.name + ':' if source != name else ''}{exc}{done}") from None
            expected, origin = (parts, "user") if parts else \
                (max(in_zip[parsed.version], parsed.parts_in_name or 1), "zip") if in_zip.get(parsed.version, 0) > 1 else \
                (DEFAULT_PTP_PARTS, "default")
            parsed_all.append((source, name, data, parsed, expected, origin))
            current[sha] = (parsed.kind, parsed.version, parsed.part)
            results.append(ImportResult(source, parsed.kind, parsed.version, parsed.part, parsed.rows.height,
                                        len(parsed.bad_rows), False, parsed.bad_rows, truncated=parsed.truncated))
    con.execute("BEGIN")
    try:
        stored = iter(r for r in results if not r.skipped)
        for _, name, data, parsed, expected, origin in parsed_all:
            result = next(stored)
            result.replaced = _store(con, name, data, parsed, is_starter=False,
                                     parts_expected=expected if parsed.kind == "ptp" else None,
                                     parts_source=origin if parsed.kind == "ptp" else None)
        if parts:       # the user's part count holds for every release this import touched
            touched = {p.version for *_, p, _, _ in parsed_all if p.kind == "ptp"} | skipped_ptp
            for ver in touched:
                con.execute("UPDATE ref_files SET parts_expected = ?, parts_source = 'user' "
                            "WHERE kind = 'ptp' AND version = ?", [parts, ver])
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):   # never hide the failure that got us here
            con.execute("ROLLBACK")
        raise
    return results


def release_status(con: duckdb.DuckDBPyConnection, kinds_versions: set[tuple[str, str]]) -> list[str]:
    """One line per touched release that is not complete: what is missing."""
    lines = []
    for kind, version, reason in con.execute(
            "SELECT kind, version, incomplete_reason FROM ref_versions WHERE incomplete_reason IS NOT NULL "
            "ORDER BY kind, version").fetchall():
        if (kind, version) in kinds_versions:
            lines.append(f"{reason}: the dates it covers stay unchecked for {kind.upper()} until it is complete")
    return lines


def ensure_reference(con: duckdb.DuckDBPyConnection) -> None:
    """Load the bundled starter set for each kind that has no CMS file loaded (idempotent)."""
    manifest = json.loads(resource(*STARTER_DIR, STARTER_MANIFEST).read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        kind = entry["kind"]
        has_cms = one(con, "SELECT count(*) FROM ref_files WHERE kind = ? AND NOT is_starter", [kind])[0]
        if has_cms:
            continue
        path = resource(*STARTER_DIR, entry["file"])
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if one(con, "SELECT 1 FROM ref_files WHERE sha256 = ?", [sha]):
            continue
        parsed = parse_member(path.name, data, version=entry["parse_as"])
        parsed.coverage_start = date.fromisoformat(entry["coverage_start"])
        parsed.coverage_end = None
        parsed.part = None
        con.execute("BEGIN")
        try:
            _store(con, path.name, data, parsed, is_starter=True, version_label=entry["version"])
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):   # never hide the failure that got us here
                con.execute("ROLLBACK")
            raise


def list_reference(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per loaded version and kind: parts, rows, coverage, completeness, whether audits use it."""
    return con.sql("""
        SELECT f.kind, f.version, string_agg(coalesce(f.part, ''), ',' ORDER BY f.part) AS parts,
               any_value(v.parts_expected) AS parts_expected,
               sum(f.rows_loaded)::BIGINT AS rows, sum(f.rows_bad)::BIGINT AS bad_rows,
               min(f.coverage_start) AS coverage_start, max(f.coverage_end) AS coverage_end,
               bool_or(f.is_starter) AS starter,
               CASE WHEN bool_or(f.is_starter) AND EXISTS (
                        SELECT 1 FROM ref_files o WHERE o.kind = f.kind AND NOT o.is_starter)
                    THEN 'superseded by CMS files'
                    WHEN any_value(v.incomplete_reason) IS NOT NULL
                    THEN 'NOT USED: ' || any_value(v.incomplete_reason)
                    ELSE 'in use' END AS status,
               string_agg(f.source_name, ', ' ORDER BY f.source_name)
                   || coalesce(' (replaces ' || nullif((SELECT count(*) FROM ref_files r WHERE r.kind = f.kind
                                                   AND r.version = f.version AND r.replaced_by IS NOT NULL), 0)::VARCHAR
                               || ' earlier download(s))', '') AS files
        FROM ref_files f LEFT JOIN ref_versions v ON v.kind = f.kind AND v.version = f.version
        WHERE f.replaced_by IS NULL
        GROUP BY f.kind, f.version ORDER BY f.kind, min(f.coverage_start), f.version
    """).pl()
