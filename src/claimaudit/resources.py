"""Locate the analyst-readable resources (sql/, flows/, data/profiles, ...).

In a source checkout (editable install) they sit at the repository root; a wheel carries them
under ``claimaudit/_resources``. One function hides the difference.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def resource_root() -> Path:
    bundled = _PACKAGE_DIR / "_resources"
    if bundled.is_dir():
        return bundled
    repo = _PACKAGE_DIR.parents[1]
    if (repo / "sql").is_dir():
        return repo
    raise FileNotFoundError(f"claimaudit resources not found under {bundled} or {repo}")


def resource(*parts: str) -> Path:
    return resource_root().joinpath(*parts)
