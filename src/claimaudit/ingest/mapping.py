"""Column mappings: how an extract's layout becomes the canonical claim line.

The canonical header (ARCHITECTURE.md names, with ``modifier_1..modifier_4``) needs no mapping.
Other layouts come through a YAML file or a named preset in ``data/mappings/`` (see docs/mappings.md).

A mapping is client-supplied text: every value in it is either checked against a closed set here
(``format.delimiter``, ``format.encoding``) or bound as a query parameter by the loader; none is
ever formatted into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from claimaudit.errors import ConfigError
from claimaudit.resources import resource
from claimaudit.schema import CLAIM_LINE_COLUMNS, MODIFIER_COLUMNS

DEFAULT_DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%m/%d/%y", "%d-%b-%Y"]
_MAPPABLE = set(CLAIM_LINE_COLUMNS) - {"source_file", "source_row", "modifiers", "diagnosis_codes"}

# The closed sets a mapping's format options are checked against (anything else is refused).
DELIMITERS = {",": ",", ";": ";", "|": "|", "\t": "\t", "tab": "\t", "\\t": "\t", ":": ":", "~": "~"}
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "utf16": "utf-16",
             "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1", "iso8859-1": "latin-1"}
MAX_SKIP_ROWS = 1000


@dataclass
class Mapping:
    name: str = "canonical"
    columns: dict[str, str] = field(default_factory=dict)           # canonical -> source column
    modifier_columns: list[str] = field(default_factory=lambda: list(MODIFIER_COLUMNS))
    modifier_column: str | None = None                              # one delimited column instead
    modifier_separator: str = r"[,;:| ]+"
    diagnosis_columns: list[str] = field(default_factory=lambda: ["diagnosis_codes"])
    diagnosis_separator: str = r"[,;| ]+"
    date_formats: dict[str, list[str]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)         # canonical -> fixed value
    payer_profiles: dict[str, str] = field(default_factory=dict)    # payer (case-insensitive) -> profile
    # source columns deliberately not loaded; the canonical layout's: the provenance columns of a file
    # converted by `claimaudit x12-lines` (its lines keep this file's own row; docs/mappings.md)
    ignore: list[str] = field(default_factory=lambda: ["source_file", "source_row"])
    delimiter: str | None = None                                    # CSV: None = detect (one of DELIMITERS)
    encoding: str = "utf-8"                                         # one of ENCODINGS' values
    sheet: str | None = None                                        # XLSX: None = first sheet
    skip_rows: int | None = None                                    # rows above the header; None = detect

    def source_for(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)

    def formats_for(self, canonical: str) -> list[str]:
        return self.date_formats.get(canonical, DEFAULT_DATE_FORMATS)

    def source_columns(self) -> dict[str, str]:
        """Every source column this mapping reads: source name -> what it feeds (for the column report)."""
        fed = {self.source_for(c): c for c in sorted(_MAPPABLE) if c not in self.constants}
        mods = [self.modifier_column] if self.modifier_column else self.modifier_columns
        fed.update({m: "modifiers" for m in mods})
        fed.update({d: "diagnosis_codes" for d in self.diagnosis_columns})
        return fed


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _closed(path: Path, key: str, value, allowed: dict[str, str]) -> str:
    text = str(value)
    found = allowed.get(text if len(text) == 1 else text.strip().lower())
    if found is None:
        shown = sorted({repr(v) if k == v else k for k, v in allowed.items()})
        raise ConfigError(f"{path}: {key} must be one of {', '.join(shown)} (got {text[:20]!r}"
                          f"{'...' if len(text) > 20 else ''})")
    return found


def _check_regex(path: Path, key: str, pattern: str) -> None:
    """A separator is a regular expression that DuckDB (RE2) runs: refuse one it cannot compile."""
    import duckdb

    try:
        duckdb.connect().execute("SELECT regexp_split_to_array('a', ?)", [pattern]).fetchall()
    except duckdb.Error:
        raise ConfigError(f"{path}: {key} is not a valid regular expression") from None


def load_mapping(spec: str | Path | None) -> Mapping:
    """``spec`` is None (canonical), a preset name, or a path to a YAML mapping file."""
    if spec is None or str(spec) == "canonical":
        return Mapping()
    path = Path(spec)
    if not path.suffix:
        preset = resource("data", "mappings", f"{spec}.yaml")
        if not preset.exists():
            names = sorted(p.stem for p in resource("data", "mappings").glob("*.yaml"))
            raise ConfigError(f"unknown mapping preset {spec!r}; presets: {', '.join(names)}, or a YAML file path")
        path = preset
    if not path.exists():
        raise ConfigError(f"{path}: mapping file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as a UTF-8 text file ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a mapping must be a YAML dictionary")
    unknown = set(raw) - {"name", "description", "columns", "modifiers", "diagnosis_codes", "date_formats",
                          "constants", "payer_profiles", "format", "ignore"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(map(str, unknown))}")
    columns = {str(k): str(v) for k, v in (raw.get("columns") or {}).items()}
    bad = set(columns) - _MAPPABLE
    if bad:
        raise ConfigError(f"{path}: columns: {sorted(bad)} are not canonical columns "
                          f"(modifiers and diagnosis_codes have their own sections)")
    m = Mapping(name=str(raw.get("name", path.stem)), columns=columns)
    mods = raw.get("modifiers") or {}
    if "column" in mods:
        m.modifier_column, m.modifier_columns = str(mods["column"]), []
    if "columns" in mods:
        m.modifier_columns = _as_list(mods["columns"])
    m.modifier_separator = str(mods.get("separator", m.modifier_separator))
    dx = raw.get("diagnosis_codes") or {}
    if "columns" in dx or "column" in dx:
        m.diagnosis_columns = _as_list(dx.get("columns", dx.get("column")))
    m.diagnosis_separator = str(dx.get("separator", m.diagnosis_separator))
    for key, pattern in (("modifiers.separator", m.modifier_separator), ("diagnosis_codes.separator",
                                                                         m.diagnosis_separator)):
        _check_regex(path, key, pattern)
    m.date_formats = {k: _as_list(v) for k, v in (raw.get("date_formats") or {}).items()}
    m.constants = {str(k): str(v) for k, v in (raw.get("constants") or {}).items()}
    m.payer_profiles = {str(k).strip().upper(): str(v) for k, v in (raw.get("payer_profiles") or {}).items()}
    m.ignore = _as_list(raw.get("ignore"))
    fmt = raw.get("format") or {}
    if not isinstance(fmt, dict):
        raise ConfigError(f"{path}: format must be a dictionary (delimiter, encoding, sheet, skip_rows)")
    unknown = set(fmt) - {"delimiter", "encoding", "sheet", "skip_rows"}
    if unknown:
        raise ConfigError(f"{path}: format: unknown keys {sorted(map(str, unknown))}")
    if fmt.get("delimiter") is not None:
        m.delimiter = _closed(path, "format.delimiter", fmt["delimiter"], DELIMITERS)
    if fmt.get("encoding") is not None:
        m.encoding = _closed(path, "format.encoding", fmt["encoding"], ENCODINGS)
    m.sheet = str(fmt["sheet"]) if fmt.get("sheet") is not None else None
    if fmt.get("skip_rows") is not None:
        skip = fmt["skip_rows"]
        if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= MAX_SKIP_ROWS:
            raise ConfigError(f"{path}: format.skip_rows must be a whole number from 0 to {MAX_SKIP_ROWS}")
        m.skip_rows = skip
    return m
