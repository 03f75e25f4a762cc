"""Column mappings: how an extract's layout becomes the canonical claim line.

The canonical header (ARCHITECTURE.md names, with ``modifier_1..modifier_4``) needs no mapping.
Other layouts come through a YAML file or a named preset in ``data/mappings/`` (see docs/mappings.md).
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
    delimiter: str | None = None                                    # CSV: None = detect
    encoding: str = "utf-8"
    sheet: str | None = None                                        # XLSX: None = first sheet
    skip_rows: int = 0

    def source_for(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)

    def formats_for(self, canonical: str) -> list[str]:
        return self.date_formats.get(canonical, DEFAULT_DATE_FORMATS)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


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
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a mapping must be a YAML dictionary")
    unknown = set(raw) - {"name", "description", "columns", "modifiers", "diagnosis_codes", "date_formats",
                          "constants", "payer_profiles", "format"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}")
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
    m.modifier_separator = mods.get("separator", m.modifier_separator)
    dx = raw.get("diagnosis_codes") or {}
    if "columns" in dx or "column" in dx:
        m.diagnosis_columns = _as_list(dx.get("columns", dx.get("column")))
    m.diagnosis_separator = dx.get("separator", m.diagnosis_separator)
    m.date_formats = {k: _as_list(v) for k, v in (raw.get("date_formats") or {}).items()}
    m.constants = {str(k): str(v) for k, v in (raw.get("constants") or {}).items()}
    m.payer_profiles = {str(k).strip().upper(): str(v) for k, v in (raw.get("payer_profiles") or {}).items()}
    fmt = raw.get("format") or {}
    m.delimiter = fmt.get("delimiter")
    m.encoding = fmt.get("encoding", "utf-8")
    m.sheet = fmt.get("sheet")
    m.skip_rows = int(fmt.get("skip_rows", 0))
    return m
