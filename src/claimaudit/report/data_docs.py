"""The data-quality page of a run (``data-docs/index.html``): the suite's results from the warehouse in
one self-contained page, offline like report.html. Great Expectations' own Data Docs site loads its
stylesheets, scripts and icons from public CDNs, which a PHI workstation without internet cannot reach,
so claimaudit renders the same validation results itself."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

_env = jinja2.Environment(loader=jinja2.PackageLoader("claimaudit.report", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def _how(kind: str, kwargs: dict) -> str:
    """The expectation's settings in words a reviewer can read (a row query is described, not shown)."""
    if kind == "unexpected_rows_expectation":
        return "a row query over the run's lines (expectations/claim_lines.json holds its SQL)"
    return "\n".join(f"{k}: {v}" for k, v in kwargs.items()) or kind


def render(path: Path, *, run_id: str, suite: dict, results: list[dict], rows_acted: dict[str, int], lines: int) -> None:
    kwargs = {(e.get("meta") or {}).get("id"): e.get("kwargs", {}) for e in suite.get("expectations", [])}
    shown = []
    for r in results:
        shown.append({**r, "how": _how(r["type"], kwargs.get(r["id"], {})),
                      "rows_acted_on": rows_acted.get(r["id"], 0),
                      "examples_text": "\n".join(json.dumps(e, default=str) for e in (r.get("examples") or [])[:20])})
    failed = [r["id"] for r in results if not r["success"]]
    html = _env.get_template("data_docs.html.j2").render(run_id=run_id, suite_name=suite.get("name", ""),
                                                       results=shown, failed=failed, lines=lines)
    from claimaudit.pipeline import atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic(path) as tmp:                       # whole or not at all, like every output
        tmp.write_text(html, encoding="utf-8")
