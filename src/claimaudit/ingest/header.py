"""Find an extract's header row and account for every one of its columns.

One mechanism for every tabular format (CSV, XLSX, Parquet): the first rows of the file, as text,
go through :func:`find_header`, which

* finds the header row: the mapping's ``format.skip_rows`` when given, else the first of the first
  ``SEARCH_ROWS`` rows that holds every required column (a title block above it is reported);
* refuses duplicate header names (naming both positions): one of the two would be loaded silently;
* records, for every column, what it feeds (a canonical column, the modifiers, ...), or that the
  mapping ignores it, or that nothing takes it (``unmapped``; the loader then counts its values and
  stops the run when it holds data, see :func:`unmapped_error`).

Messages never quote a data row's values (a headerless file's first row is claim data).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from claimaudit.errors import InputError
from claimaudit.ingest.mapping import Mapping
from claimaudit.schema import REQUIRED_COLUMNS

SEARCH_ROWS = 20          # how far down a title block may push the header


@dataclass
class Column:
    position: int                  # 1-based, as a spreadsheet user counts
    name: str                      # as written in the header (trimmed); "" for a blank header cell
    feeds: str | None              # canonical column / "modifiers" / "diagnosis_codes"; None if unmapped
    ignored: bool = False          # declared in the mapping's ``ignore``

    @property
    def label(self) -> str:
        return f"'{self.name}' (column {self.position})" if self.name else f"column {self.position} (no header)"

    @property
    def key(self) -> str:
        """The name an ``ignore`` entry uses for it: the header, or ``#<position>`` for a blank one."""
        return self.name or f"#{self.position}"


@dataclass
class Header:
    columns: list[Column]
    row: int                       # 1-based row of the header in the file (data starts on the next row)
    warnings: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def position(self, source: str) -> int | None:
        for c in self.columns:
            if c.name == source:
                return c.position
        return None

    @property
    def unmapped(self) -> list[Column]:
        return [c for c in self.columns if c.feeds is None and not c.ignored]


def _clean(cell) -> str:
    return "" if cell is None else str(cell).replace("\ufeff", "").strip()


def _required_sources(mapping: Mapping) -> list[str]:
    return [mapping.source_for(c) for c in REQUIRED_COLUMNS if c not in mapping.constants]


def _refuse_known_layouts(rows: list[list], path) -> None:
    """Layouts claimaudit recognises but cannot audit, refused with the reason in one line."""
    for row in rows:
        names = {str(c).strip().upper() for c in row if c is not None}
        if "DESYNPUF_ID" in names and "HCPCS_CD_1" in names:
            raise InputError(f"{path}: a CMS DE-SynPUF carrier claims file: each row is a claim with up to 13 "
                             "procedure codes (HCPCS_CD_1..13) and no units, modifiers or minutes, so the PTP "
                             "placement, MUE, time and modifier rules cannot run on it; audit an extract of claim "
                             "lines from the billing system (or the CMS RIF carrier layout: --mapping cms_rif_carrier)")


def find_header(rows: list[list], mapping: Mapping, path, *, what: str = "row", first_row: int = 1) -> Header:
    """The header among ``rows`` (the file's first rows, cells as text; ``rows[0]`` is the file's row
    ``first_row``) and the role of each column."""
    required = _required_sources(mapping)
    _refuse_known_layouts(rows[:SEARCH_ROWS], path)
    if mapping.skip_rows is not None:
        index = mapping.skip_rows
        if index >= len(rows):
            raise InputError(f"{path}: format.skip_rows is {mapping.skip_rows} but the file has only "
                             f"{len(rows)} {what}(s) there: no header row")
    else:
        scored = [(sum(name in {_clean(c) for c in row} for name in required), i)
                  for i, row in enumerate(rows[:SEARCH_ROWS])]
        complete = [i for score, i in scored if score == len(required)]
        if complete:
            index = complete[0]
        else:
            best_score, index = max(scored, key=lambda s: (s[0], -s[1]), default=(0, 0))
            if best_score == 0:
                hint = "" if mapping.name != "canonical" else " (use --mapping for other layouts)"
                raise InputError(f"{path}: no recognizable header: missing column(s) {', '.join(required)} for "
                                 f"mapping {mapping.name!r}{hint}; none of the first {min(len(rows), SEARCH_ROWS)} "
                                 f"{what}(s) names any of them (is the header row missing?)")
    cells = [_clean(c) for c in rows[index]]
    present = set(cells)
    missing = [name for name in required if name not in present]
    if missing:
        hint = "" if mapping.name != "canonical" else " (use --mapping for other layouts)"
        # the row's cells are shown only when it is a header (it names a required column): otherwise
        # they would be a data row's values, i.e. claim data
        found = (f"; the header ({what} {index + 1}) has: " + _cut(", ".join(f"'{c}'" for c in cells if c))
                 if len(missing) < len(required) else f"; {what} {index + 1} names none of them")
        raise InputError(f"{path}: no recognizable header: missing column(s) {', '.join(missing)} for mapping "
                         f"{mapping.name!r}{hint}{found}")
    seen: dict[str, int] = {}
    for position, name in enumerate(cells, start=1):
        if name and name in seen:
            raise InputError(f"{path}: the header ({what} {index + 1}) names two columns '{name}' (columns "
                             f"{seen[name]} and {position}): rename one, so that each column is loaded once")
        seen.setdefault(name, position)
    feeds = mapping.source_columns()
    ignored = set(mapping.ignore)
    columns = [Column(p, n, feeds.get(n) if n else None, (n or f"#{p}") in ignored)
               for p, n in enumerate(cells, start=1)]
    header = Header(columns, index + 1)
    if index and mapping.skip_rows is None:
        header.warnings.append(f"{index} {what}(s) above the header skipped (a title block); the header is "
                               f"{what} {index + first_row}")
    return header


def _cut(text: str, limit: int = 400) -> str:
    """At most ``limit`` characters, cut at a word boundary (never mid-name)."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(", ", 1)[0] + ", ..."


def suggestion(column: Column, mapping: Mapping, present: set[str]) -> str:
    """The mapping key that would take an unmapped column (a near-miss canonical name when there is one).
    ``present``: the file's header names (a target whose source column is in the file is taken)."""
    from claimaudit.ingest.mapping import _MAPPABLE
    from claimaudit.schema import MODIFIER_COLUMNS

    taken = {target for source, target in mapping.source_columns().items() if source in present}
    taken |= {source for source in mapping.source_columns() if source in present}
    name = column.name.lower().replace(" ", "_").replace("-", "_")
    candidates = sorted((_MAPPABLE | set(MODIFIER_COLUMNS) | {"diagnosis_codes"}) - taken)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75) if column.name else []
    if close and close[0] in MODIFIER_COLUMNS:
        return (f"it looks like {close[0]}: list it under modifiers: columns: in the mapping, or under "
                f"ignore: to leave it out")
    if close:
        return f"it looks like {close[0]}: map it with columns: {{{close[0]}: {column.name}}}, or list it under ignore:"
    return f"map it under columns: (or modifiers:/diagnosis_codes:), or list it under ignore: as '{column.key}'"


def unmapped_error(path, columns: list[tuple[Column, int]], mapping: Mapping, header: Header) -> InputError:
    """One line: the unmapped columns that hold data, and what would take them."""
    first, count = columns[0]
    more = f" (and {len(columns) - 1} more: {', '.join(c.label for c, _ in columns[1:4])}" + \
        (", ..." if len(columns) > 4 else "") + ")" if len(columns) > 1 else ""
    return InputError(f"{path}: {first.label} holds data in {count:,} row(s) but mapping {mapping.name!r} does not "
                      f"load it: {suggestion(first, mapping, set(header.names))}{more}; or pass --allow-unmapped-columns to audit "
                      "without it (the summary lists what was left out)")
