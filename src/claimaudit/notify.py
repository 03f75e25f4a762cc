"""Completion messages for scheduled runs, through Apprise (mail, Slack, Teams, webhooks: any Apprise URL).

The message carries headline numbers and the report path only: counts, dollars, rule ids. No claim
ids, patients or providers, so it is safe for a chat channel.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def message(summary: dict) -> tuple[str, str]:
    f = summary["findings"]
    h = summary.get("history") or {}
    land = summary.get("landing") or {}
    title = f"claimaudit {summary['run_id']}: {f['total']} findings, ${summary['amount_at_risk']:,.2f} at risk"
    body = "\n".join(filter(None, [
        f"read {summary['read']} = loaded {summary['loaded']} + quarantined {summary['quarantined']}",
        (f"landing: {len(land['files_new'])} new file(s), {len(land['files_skipped'])} skipped, "
         f"{land['claims_replaced']} claim(s) replaced, {land['days_audited']} day(s) audited") if land else "",
        f"findings: {f['error']} error, {f['warning']} warning, {f['info']} info",
        (f"denials (835): {summary['denials']['denied_lines']} denied line(s), "
         f"${summary['denials']['preventable_dollars']:,.2f} preventable") if summary.get("denials") else "",
        (f"not read: {len(land['files_ignored'])} file(s) neither an extract nor X12"
         if land.get("files_ignored") else ""),
        (f"since the previous run: {h['new']} new, {h['recurring']} recurring, {h['resolved']} resolved"
         if h.get("previous_run_id") else ""),
        "STARTER reference set used (not the CMS tables)" if summary["reference"]["starter_set_used"] else "",
        f"report: {summary['out_dir']}/report.html",
    ]))
    return title, body


def notify(url: str, summary: dict | None, *, error: str | None = None) -> bool:
    """Send the completion (or failure) message; a failed notification is logged, never fails the run."""
    import apprise

    title, body = message(summary) if summary else ("claimaudit run failed", error or "")
    sender = apprise.Apprise()
    if not sender.add(url):
        log.warning("claimaudit: notification URL not understood by Apprise; no message sent")
        return False
    ok = bool(sender.notify(title=title, body=body))
    if not ok:
        log.warning("claimaudit: the notification could not be delivered")
    return ok


def summary_markdown(summary: dict) -> str:
    """The run's headline as Markdown for a Prefect artifact (counts only, no claim data)."""
    f = summary["findings"]
    from pathlib import Path

    from claimaudit.rules import catalogue

    dollars = f.get("dollars_by_rule") or {}
    rows = "\n".join(f"| {rule} | {catalogue.name(rule)} | {n} | ${dollars.get(rule, 0):,.2f} |"
                     for rule, n in f["by_rule"].items()) or "| (none) | | 0 | |"
    families = ", ".join(f"{k} ${v:,.2f}" for k, v in (f.get("dollars_by_family") or {}).items() if v)
    starter = "\n\n**Starter reference set used: not the CMS tables.**" if summary["reference"]["starter_set_used"] else ""
    h = summary.get("history") or {}
    since = (f"\n\nSince run {h['previous_run_id']}: {h['new']} new, {h['recurring']} recurring, "
             f"{h['resolved']} resolved." if h.get("previous_run_id") else "")
    return (f"# claimaudit run {summary['run_id']}\n\n"
            f"read {summary['read']} = loaded {summary['loaded']} + quarantined {summary['quarantined']}; "
            f"{f['total']} findings ({f['error']} error, {f['warning']} warning, {f['info']} info); "
            f"${summary['amount_at_risk']:,.2f} at risk" + (f" ({families})" if families else "") + f".{since}{starter}"
            f"\n\nReport: `{Path(summary['out_dir']).resolve() / 'report.html'}`"
            f"\n\n| rule | name | findings | dollars at risk |\n|---|---|---:|---:|\n{rows}\n")
