"""What kind of file an input is, and whether it can be read at all: the checks an audit makes before it
starts anything. Standard library only, so the command line runs them before it imports the engine."""

from __future__ import annotations

import re
from pathlib import Path

from claimaudit.errors import InputError

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}


def is_x12(path: Path) -> bool:
    """X12 is recognised by content (an interchange starts with ISA), whatever the file is called."""
    if not path.is_file():
        return False
    with path.open("rb") as fh:
        head = fh.read(512).lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"ISA") and len(head) > 3 and not chr(head[3]).isalnum()


_X12_SEGMENT = re.compile(rb"(GS|ST|BHT|NM1|HL|CLM|SV1|SE|GE|IEA)([*|^~:])[^\r\n]{0,200}?~")


def _x12_without_envelope(path: Path) -> str | None:
    """The first segment id when the file reads as X12 segments (``GS*HC*...~``) without its ISA header."""
    with path.open("rb") as fh:
        head = fh.read(512).lstrip(b"\xef\xbb\xbf").lstrip()
    match = _X12_SEGMENT.match(head)
    return match.group(1).decode() if match else None


def file_format(path: Path) -> str:
    """The reader for ``path`` (csv, parquet, xlsx, x12); one clear InputError if there is none."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; name the extract files")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    if is_x12(path):
        return "x12"
    segment = _x12_without_envelope(path)
    if segment:
        raise InputError(f"{path}: line 1 starts with an X12 {segment} segment but the file has no ISA interchange "
                         "header: the envelope is missing (an 837P file starts with ISA*...; ask for the complete "
                         "file as the clearinghouse sent it)")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unsupported file type {path.suffix or '(none)'} (expected .csv, .parquet, .xlsx "
                         "or an X12 837P interchange)")
    return fmt


def check_inputs(inputs: list[str | Path]) -> None:
    """Fail fast, before anything is started or created, on a file that cannot be read at all
    (missing, a folder, empty, of no type claimaudit reads) or that is named twice."""
    seen: dict[Path, str] = {}
    for path in inputs:
        file_format(Path(path))
        key = Path(path).resolve()
        if key in seen:
            raise InputError(f"{path}: named twice (as {seen[key]} too): give each file once")
        seen[key] = str(path)
