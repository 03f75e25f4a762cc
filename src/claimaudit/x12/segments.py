"""X12 envelopes and segments: separators from the ISA header, segments as a Polars frame.

The ISA segment is fixed-width: 106 characters, with the element separator at position 4, the
component separator (ISA16) at 105 and the segment terminator at 106. Real files deviate:

* a BOM, leading whitespace, and CR/LF or indentation between segments: all ignored;
* a newline as the segment terminator: accepted (the character after ISA16);
* ISA16 declaring one component separator while the composites use another (commonly ``:``
  declared and ``>`` used in SV1/SVC): detected from the procedure composites and used, with a
  warning naming the file;
* several ISA/GS/ST envelopes in one file: every ISA must declare the same separators.

Segments are read in pieces that end at an ST boundary (a transaction set is self-contained), so
memory follows the piece size, not the file size (``iter_pieces``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from claimaudit.errors import InputError

PIECE_BYTES = 8 << 20                           # text parsed at once; pieces end before an ST segment
_TAG = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")


@dataclass
class Separators:
    element: str
    component: str
    terminator: str
    repetition: str | None = None
    warnings: list[str] = field(default_factory=list)


def head(path: Path, size: int = 4096) -> str:
    """The start of the file (BOM dropped): enough for the ISA header and the first ST."""
    with path.open("rb") as fh:
        data = fh.read(size)
    return data.removeprefix(b"\xef\xbb\xbf").decode("latin-1")


def separators(path: Path, text: str) -> Separators:
    """Separators from the first ISA; a clear error when the file does not start with a valid ISA."""
    start = text.lstrip()
    if not start.startswith("ISA"):
        first = start[:3] or "(empty)"
        raise InputError(f"{path}: not an X12 interchange: the file must start with an ISA segment (starts with {first!r})")
    element = start[3]
    fields = start[:200].split(element)
    if len(fields) < 17 or len(fields[16]) < 2:
        raise InputError(f"{path}: line 1, ISA: the interchange header is cut short (fewer than 16 elements)")
    widths = [len(f) for f in fields[1:16]]
    expected = [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1]
    wrong = [f"ISA{i:02d} is {w} characters (expected {e})" for i, (w, e) in enumerate(zip(widths, expected, strict=True), 1)
             if w != e]
    if wrong:
        raise InputError(f"{path}: line 1, ISA: the fixed-width interchange header is malformed: {'; '.join(wrong)}")
    component, terminator = fields[16][0], fields[16][1]
    repetition = fields[11] if fields[12] >= "00402" and fields[11] not in {"U", element} else None
    return Separators(element, component, terminator, repetition)


def iter_pieces(path: Path, seps: Separators, piece_bytes: int = PIECE_BYTES) -> Iterator[tuple[str, int]]:
    """Text pieces that end before an ST segment, with the number of segments before each piece.

    The file is read in blocks of ``piece_bytes``: memory follows the block size, not the file size
    (a transaction set larger than a block is kept whole)."""
    st = re.compile(re.escape(seps.terminator) + r"\s*ST" + re.escape(seps.element))
    segments_before, carry = 0, ""
    with path.open("rb") as fh:
        first = True
        while True:
            block = fh.read(piece_bytes)
            if first and block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
            first = False
            if not block:
                break
            try:
                text = carry + block.decode("utf-8")
            except UnicodeDecodeError:                    # a block may cut a UTF-8 character: latin-1 keeps bytes
                text = carry + block.decode("latin-1")
            if len(block) < piece_bytes:                 # the end of the file: the rest is one piece
                carry = text
                break
            cut = None
            for m in st.finditer(text):
                cut = m.start() + len(seps.terminator)
            if cut is None or cut == 0:
                carry = text
                continue
            yield text[:cut], segments_before
            segments_before += text[:cut].count(seps.terminator)
            carry = text[cut:]
    if carry.strip():
        yield carry, segments_before


def frame(piece: str, seps: Separators, first_segment: int) -> pl.DataFrame:
    """One row per segment: ``seg`` (1-based position in the file), ``tag``, ``el`` (elements, tag first),
    ``row`` (position among the piece's non-empty segments)."""
    raw = pl.Series("raw", [piece], dtype=pl.String).str.split(seps.terminator).explode()   # split in Rust
    df = pl.DataFrame(raw).with_row_index("seg", offset=first_segment + 1)
    df = df.with_columns(pl.col("raw").str.strip_chars()).filter(pl.col("raw") != "")
    return df.select(pl.col("seg").cast(pl.Int64), el=pl.col("raw").str.split(seps.element)).with_columns(
        tag=pl.col("el").list.first()).with_row_index("row")


def bad_tags(df: pl.DataFrame) -> pl.Series:
    return ~df["tag"].str.contains(_TAG.pattern)
