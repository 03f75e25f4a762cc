"""Rule names from one place: ``data/rules/catalogue.csv`` (rule id, family, short name) for the SQL rules
and the data-quality suite's ``meta.description`` for its ``DQ-…`` ids. Every output (CLI, report.html,
report.xlsx, the Prefect artifact) shows ``ID name`` through ``name()`` / ``label()``."""

from __future__ import annotations

import csv
import functools
import json

from claimaudit.resources import resource


@functools.cache
def names() -> dict[str, str]:
    with resource("data", "rules", "catalogue.csv").open(encoding="utf-8", newline="") as fh:
        out = {row["rule_id"]: row["name"] for row in csv.DictReader(fh)}
    from claimaudit.quality.runner import suite_path

    try:
        suite = json.loads(suite_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    for e in suite.get("expectations", []):
        meta = e.get("meta") or {}
        if meta.get("id") and meta.get("description"):
            text = meta["description"].split(" (")[0]
            out.setdefault(meta["id"], "Data quality: " + text)
    return out


def name(rule_id: str) -> str:
    return names().get(rule_id, "")


def label(rule_id: str) -> str:
    """``PTP-002 NCCI pair without a bypass modifier`` (the id alone for an id not in the catalogue)."""
    text = name(rule_id)
    return f"{rule_id} {text}" if text else rule_id
