"""report.html: one self-contained file (inline CSS, inline SVG charts, a little inline JS)."""

from __future__ import annotations

from pathlib import Path

import jinja2

from claimaudit.report import charts
from claimaudit.report.data import ReportData

# the findings table, laid out for reading: the line, the rule, what is wrong, what to do, dollars, CARC;
# the rest (expected/billed, patient and NPI, related lines, reference, status) behind "details"
FINDING_COLUMNS = [("severity", "severity"), ("line", "claim:line · DOS · code"), ("rule", "rule"),
                   ("message", "what is wrong"), ("action", "what to do"), ("amount_at_risk", "$ at risk"),
                   ("carc", "predicted CARC"), ("more", "")]

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
        findings=data.findings.to_dicts(), findings_total=data.findings_total, finding_columns=FINDING_COLUMNS,
        rule_names={r["rule_id"]: r["name"] for r in data.by_rule.to_dicts()})
    path.write_text(html, encoding="utf-8")
