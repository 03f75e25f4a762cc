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

PIECE_BYTES = 4 << 20                           # text parsed at once; pieces end before an ST segment
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


def _last_st(block: bytes, seps: Separators) -> int | None:
    """Where the last ST segment of a block starts: just after the terminator before it (whitespace
    between the two goes with the ST). None when the block has no ST after its start."""
    st, term = ("ST" + seps.element).encode("latin-1"), seps.terminator.encode("latin-1")
    pos = len(block)
    while (pos := block.rfind(st, 0, pos)) > 0:
        end = pos
        while end > 0 and block[end - len(term):end] != term and block[end - 1] in b" \t\r\n":
            end -= 1                                  # whitespace between the terminator and ST
        if block[end - len(term):end] == term:
            return end
    return None


def iter_pieces(path: Path, seps: Separators, piece_bytes: int = PIECE_BYTES) -> Iterator[tuple[str, int]]:
    """Text pieces that end before an ST segment, with the number of segments before each piece.

    The file is read in blocks of ``piece_bytes``: memory follows the block size, not the file size
    (a transaction set larger than a block is kept whole). The cut is found from the end of the block
    (``rfind``), so finding it costs next to nothing, and a piece is decoded only once."""
    term = seps.terminator.encode("latin-1")
    segments_before, carry = 0, b""
    with path.open("rb") as fh:
        first = True
        while True:
            block = fh.read(piece_bytes)
            if first and block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
            first = False
            if len(block) < piece_bytes:                 # the end of the file: the rest is one piece
                carry += block
                break
            data = carry + block
            cut = _last_st(data, seps)
            if not cut:
                carry = data
                continue
            yield _decode(data[:cut]), segments_before
            segments_before += data.count(term, 0, cut)
            carry = data[cut:]
    if carry.strip():
        yield _decode(carry), segments_before


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:                        # not UTF-8: latin-1 keeps every byte
        return data.decode("latin-1")


def frame(piece: str, seps: Separators, first_segment: int) -> pl.DataFrame:
    """One row per segment: ``seg`` (1-based position in the file), ``tag``, ``raw`` (the segment's text),
    ``row`` (position among the piece's non-empty segments). Elements are split per tag, on demand
    (``Segments``): most segments are never split twice and the frame carries one string per segment."""
    raw = pl.Series("raw", [piece], dtype=pl.String).str.split(seps.terminator).explode()   # split in Rust
    df = pl.DataFrame(raw).with_row_index("seg", offset=first_segment + 1)
    df = df.with_columns(pl.col("raw").str.strip_chars()).filter(pl.col("raw") != "")
    end = pl.col("raw").str.find(seps.element, literal=True).fill_null(pl.col("raw").str.len_chars())
    return df.select(pl.col("seg").cast(pl.Int64), "raw", tag=pl.col("raw").str.head(end)).with_row_index("row")


def element(i: int) -> pl.Expr:
    """Element i of a segment (``el``: the elements, tag first); NULL past the end."""
    return pl.col("el").list.get(i, null_on_oob=True)


def nonempty(i: int) -> pl.Expr:
    """Element i, NULL when empty. Not trimmed: X12 suppresses leading and trailing spaces outside the
    fixed-width ISA, and the normaliser trims every value it types (trimming every element cost
    ~10 % of an 837 piece)."""
    v = element(i)
    return pl.when(v != "").then(v)


def trimmed(i: int) -> pl.Expr:
    """Element i trimmed, NULL when blank: for values where a stray space would change what is read
    (HL ids, NPIs that fall back to another, remittance amounts)."""
    v = element(i).str.strip_chars()
    return pl.when(v != "").then(v)


def last_position(tag: str) -> pl.Expr:
    """For each segment, the position of the latest ``tag`` segment at or before it (its loop)."""
    return pl.when(pl.col("tag") == tag).then(pl.col("seg")).forward_fill()


def component_separator(path: Path, text: str, seps: Separators) -> None:
    """ISA16 vs the separator the SV1/SVC composites really use ("HC:99213" or "HC>99213")."""
    elem = re.escape(seps.element)
    used = sorted(set(re.findall(rf"(?:SV1|SVC){elem}HC([^A-Za-z0-9{elem}])", text)))
    if len(used) == 1 and seps.component != used[0]:
        seps.warnings.append(f"{path}: ISA16 declares {seps.component!r} as the component separator but the "
                             f"procedure composites use {used[0]!r}; read with {used[0]!r}")
        seps.component = used[0]


class Segments:
    """A piece's segments partitioned by tag. ``seg("CLM")`` is a LazyFrame of the CLM segments with
    ``el`` (the elements, tag first), for the piece's plans; ``seg.frame("CLM")`` is the same, eager.
    Each tag is split into elements once, when first asked for."""

    def __init__(self, df: pl.DataFrame, seps: Separators):
        self._element = seps.element
        self._parts = df.partition_by("tag", as_dict=True)
        self._split: dict[str, pl.DataFrame] = {}
        self._empty = df.clear().with_columns(el=pl.lit(None, pl.List(pl.String))).drop("raw")

    def frame(self, tag: str) -> pl.DataFrame:
        if tag not in self._split:
            part = self._parts.get((tag,))
            self._split[tag] = self._empty if part is None else \
                part.with_columns(el=pl.col("raw").str.split(self._element)).drop("raw")
        return self._split[tag]

    def __call__(self, tag: str) -> pl.LazyFrame:
        return self.frame(tag).lazy()


def bad_tags(df: pl.DataFrame) -> pl.Series:
    tags = df["tag"].unique()                         # a few dozen distinct tags: test those, not every row
    return df["tag"].is_in(tags.filter(~tags.str.contains(_TAG.pattern)).implode())
