"""Payer profiles: named settings in YAML (data/profiles/*.yaml, plus $CLAIMAUDIT_PROFILE_PATH dirs).

Adding a profile needs no code: drop a YAML file next to the shipped ones (or in a folder named by
``CLAIMAUDIT_PROFILE_PATH``) and map payers to it in the extract's mapping.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import yaml

from claimaudit.errors import ConfigError
from claimaudit.resources import resource

PLACEMENTS = {"either_line", "column2_only"}
TIME_METHODS = {"cms_total", "cpt_per_code"}
# Rules of catalogue v2 that a profile turns on or off (`rules:` in its YAML; off unless it says so)
SWITCHED_RULES = ("MOD-005", "MOD-006", "MOD-007", "MOD-009", "MOD-010", "COV-001")
CARC_KEYS = ("ptp", "mue", "duplicates", "units_time", "modifiers", "assistant", "kx", "chiropractic", "coverage",
             "invalid_code")


def _profile_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("CLAIMAUDIT_PROFILE_PATH", "").split(os.pathsep) if p]
    return [resource("data", "profiles"), *extra]


def _validate(name: str, raw: dict, path: Path) -> dict:
    ptp = raw.get("ptp") or {}
    placement = ptp.get("modifier_placement", "column2_only")
    if placement not in PLACEMENTS:
        raise ConfigError(f"{path}: ptp.modifier_placement must be one of {sorted(PLACEMENTS)}")
    time_method = raw.get("time_method", "cms_total")
    if time_method not in TIME_METHODS:
        raise ConfigError(f"{path}: time_method must be one of {sorted(TIME_METHODS)}")
    either_from = ptp.get("either_line_from")
    if isinstance(either_from, str):
        either_from = date.fromisoformat(either_from)
    carc = raw.get("predicted_carc") or {}
    switches = raw.get("rules") or {}
    if not isinstance(switches, dict) or set(map(str, switches)) - set(SWITCHED_RULES) or \
            not all(isinstance(v, bool) for v in switches.values()):
        raise ConfigError(f"{path}: rules: must map rule ids to true/false; the rules a profile switches are "
                          f"{', '.join(SWITCHED_RULES)}")
    return {
        "profile": name,
        "description": str(raw.get("description", "")),
        "ptp_modifier_placement": placement,
        "ptp_either_line_from": either_from,
        "time_method": time_method,
        "therapy_modifiers_required": bool(raw.get("therapy_modifiers_required", True)),
        **{f"carc_{family}": carc.get(family) for family in CARC_KEYS},
        "enabled_rules": sorted(rule for rule, on in switches.items() if on),
    }


def load_profiles() -> dict[str, dict]:
    profiles: dict[str, dict] = {}
    for folder in _profile_dirs():
        for path in sorted(folder.glob("*.yaml")):
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
            name = str(raw.get("name", path.stem))
            profiles[name] = _validate(name, raw, path)
    return profiles


def register_profiles(con: duckdb.DuckDBPyConnection, profiles: dict[str, dict]) -> None:
    """Expose the profiles to the rule SQL as the temp table ``profiles`` (one row per profile)."""
    frame = pl.DataFrame(list(profiles.values()), schema_overrides={  # noqa: F841 (queried by name)
        "ptp_either_line_from": pl.Date, "enabled_rules": pl.List(pl.String)})
    con.execute("CREATE OR REPLACE TEMP TABLE profiles AS SELECT * FROM frame")
