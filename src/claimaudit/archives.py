"""Zip archives read with limits: a CMS reference zip, an .xlsx workbook (itself a zip).

A 2 MB zip can hold gigabytes of zeros. Every member is decompressed as a stream, counting what it
yields: a member larger than ``limit`` bytes, or larger than ``ratio`` times its compressed size, is
refused with one line before it can fill memory. Zip headers can lie about sizes, so the count is of
the bytes actually produced, not of what the header declares. The limits stand far above the real
files (the practitioner PTP parts are tens of MB; a full Excel sheet a few hundred MB).

Member names are only ever used as labels (``Path(name).name``); nothing is extracted to disk, so a
name like ``../../etc/passwd`` cannot write anywhere.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

MB = 1024 * 1024
REFERENCE_LIMIT = 512 * MB        # one CMS reference file
REFERENCE_RATIO = 100             # text compresses 5-30x; a bomb of zeros ~1000x
WORKBOOK_LIMIT = 2048 * MB        # one member of an .xlsx extract
WORKBOOK_RATIO = 200
MAX_MEMBERS = 10_000
CHUNK = MB


class ArchiveTooLarge(ValueError):
    """A member exceeds the limits: the message names it and the limit."""


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int, ratio: int, keep: bool = True) -> bytes:
    """The member's bytes (or b"" when ``keep`` is False: only counted), refused past the limits."""
    cap = min(limit, max(ratio * max(info.compress_size, 1), CHUNK))
    if info.file_size > cap:
        raise ArchiveTooLarge(_too_large(info, info.file_size, limit, ratio))
    parts, total = [], 0
    with zf.open(info) as fh:
        while chunk := fh.read(CHUNK):
            total += len(chunk)
            if total > cap:
                raise ArchiveTooLarge(_too_large(info, total, limit, ratio, at_least=True))
            if keep:
                parts.append(chunk)
    return b"".join(parts)


def _too_large(info: zipfile.ZipInfo, size: int, limit: int, ratio: int, at_least: bool = False) -> str:
    return (f"member {Path(info.filename).name} unpacks to {'more than ' if at_least else ''}{size / MB:,.0f} MB from "
            f"{info.compress_size / MB:,.1f} MB compressed: refused (limits: {limit // MB:,} MB per member, "
            f"{ratio}x compression); a zip bomb, or not the file it claims to be")


def members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_MEMBERS:
        raise ArchiveTooLarge(f"the archive has {len(infos):,} members (limit {MAX_MEMBERS:,})")
    return infos


def check_workbook(path: Path) -> None:
    """An .xlsx is a zip: unpack-count every member once before the spreadsheet reader opens it."""
    with zipfile.ZipFile(path) as zf:
        for info in members(zf):
            read_member(zf, info, limit=WORKBOOK_LIMIT, ratio=WORKBOOK_RATIO, keep=False)
