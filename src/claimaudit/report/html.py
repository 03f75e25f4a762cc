"""report.html: one self-contained file (inline CSS, inline SVG charts, a little inline JS)."""

from __future__ import annotations

from pathlib import Path

import jinja2

from claimaudit.report import charts
from claimaudit.report.data import ReportData

COLUMNS = ["severity", "rule_id", "status", "claim_id", "line_number", "date_of_service", "patient_id",
           "rendering_npi", "procedure_code", "related_code", "expected", "actual", "message",
           "recommended_action", "amount_at_risk", "predicted_carc", "reference", "related_lines"]
NUMERIC = {"line_number", "amount_at_risk"}

_env = jinja2.Environment(loader=jinja2.PackageLoader("claimaudit.report", "templates"),
                          autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def render_html(data: ReportData, path: Path) -> None:
    figures = {
        "by_rule": charts.findings_by_rule(data.by_rule),
        "provider": charts.dollars_by(data.by_provider, "provider", "rendering NPI"),
        "payer": charts.dollars_by(data.by_payer, "payer", "payer"),
        "code": charts.dollars_by(data.by_code, "code", "procedure code"),
        "trend_findings": charts.trend(data.trend, "findings", "findings"),
        "trend_dollars": charts.trend(data.trend, "dollars_at_risk", "dollars at risk"),
    }
    html = _env.get_template("report.html.j2").render(
        run=data.run, s=data.summary, h=data.summary.get("history") or {}, charts=figures,
        sev={"error": "err", "warning": "warn", "info": "info"},
        by_rule=data.by_rule.to_dicts(), by_family=data.by_family.to_dicts(),
        dims=[("provider", "rendering NPI", data.by_provider.to_dicts()), ("payer", "payer", data.by_payer.to_dicts()),
              ("code", "procedure code", data.by_code.to_dicts())],
        code_pairs=data.code_pairs.to_dicts(), unchecked=data.unchecked.to_dicts(),
        dq=data.data_quality.to_dicts(), resolved=data.resolved.to_dicts() if data.resolved.height else [],
        findings=data.findings.to_dicts(), findings_total=data.findings_total, columns=COLUMNS, numeric=NUMERIC,
        rule_names={r["rule_id"]: r["name"] for r in data.by_rule.to_dicts()})
    path.write_text(html, encoding="utf-8")
