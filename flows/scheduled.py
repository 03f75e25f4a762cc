"""Scheduled audits as Prefect deployments: nightly landing folder, weekly full re-audit, quarterly
reference-data refresh (docs/scheduling.md). ``claimaudit serve`` serves them.

* Each flow holds the warehouse lock for the whole run (claimaudit.locking); a second run fails fast.
* Steps are Prefect tasks with caching and result persistence off (claim data never reaches Prefect
  storage). The steps that touch files (scanning the landing folder, reading the extracts, importing
  CMS files) retry with exponential backoff on unexpected errors (a share that blinks, a file still
  being copied); a user error (bad file, unknown profile) is not retried and fails the run with one line.
* On completion an optional Apprise notification carries the headline numbers and the report path.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, serve, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron
from prefect.states import Failed
from prefect.tasks import exponential_backoff

from claimaudit import landing, pipeline
from claimaudit.errors import ClaimAuditError
from claimaudit.notify import notify, summary_markdown

FILE_STEPS = {"scan-landing", "ingest", "import-reference"}
RETRIES = 3


def _step(name: str, fn, *args, **kwargs):
    """Run one pipeline step as a Prefect task (retries with backoff for the steps that touch files).

    A ClaimAuditError (the input itself is wrong) comes back as data, so it is neither retried nor
    logged by Prefect as a traceback; it is raised again here, in the flow, as one line."""
    def guarded(*a, **k):
        try:
            return {"value": fn(*a, **k)}
        except ClaimAuditError as exc:
            return {"error": str(exc)}
    guarded.__name__ = name.replace("-", "_")

    retry = name in FILE_STEPS
    as_task = task(name=name, cache_policy=NO_CACHE, persist_result=False, log_prints=False,
                   retries=RETRIES if retry else 0,
                   retry_delay_seconds=exponential_backoff(backoff_factor=10) if retry else 0)(guarded)
    result = as_task(*args, **kwargs)
    if "error" in result:
        raise ClaimAuditError(result["error"])
    return result["value"]


def _landing_run(folder, db, scope, profile, mapping, out_root, full, data_quality, settle_seconds, notify_url):
    run_id = pipeline.new_run_id()
    try:
        summary = pipeline.run_landing(folder, db=db, mapping=mapping, profile=profile, scope=scope, full=full,
                                       out=str(Path(out_root) / run_id), run_id=run_id,
                                       data_quality=data_quality, settle_seconds=settle_seconds, step=_step)
    except ClaimAuditError as exc:
        if notify_url:
            notify(notify_url, None, error=str(exc))
        return Failed(message=str(exc))
    create_markdown_artifact(key="claimaudit-landing", markdown=summary_markdown(summary),
                             description="claimaudit scheduled run (counts only, no claim data)")
    if notify_url:
        notify(notify_url, summary)
    return {k: summary[k] for k in ("run_id", "out_dir", "read", "loaded", "quarantined", "amount_at_risk")} | {
        "findings": summary["findings"]["total"], "landing": summary["landing"]}


@flow(name="claimaudit-landing", log_prints=False, persist_result=False)
def landing_audit(folder: str, db: str = "claimaudit.duckdb", scope: str | None = None,
                  profile: str = pipeline.DEFAULT_PROFILE, mapping: str | None = None,
                  out_root: str = "audit-out", full: bool = False, data_quality: bool = True,
                  settle_seconds: float = 120, notify_url: str | None = None):
    """Audit what is new or corrected in a landing folder (``full``: every day of the ledger)."""
    return _landing_run(folder, db, scope, profile, mapping, out_root, full, data_quality, settle_seconds,
                        notify_url)


@flow(name="claimaudit-refdata-refresh", log_prints=False, persist_result=False)
def refdata_refresh(refdata_folder: str, folder: str, db: str = "claimaudit.duckdb", scope: str | None = None,
                    profile: str = pipeline.DEFAULT_PROFILE, mapping: str | None = None,
                    out_root: str = "audit-out", data_quality: bool = True, notify_url: str | None = None):
    """Import the CMS files dropped into ``refdata_folder``; re-audit the dates the new versions cover."""
    from claimaudit.locking import warehouse_lock
    from claimaudit.refdata import import_paths
    from claimaudit.warehouse import connect

    paths = sorted(str(p) for p in Path(refdata_folder).iterdir()
                   if p.is_file() and p.suffix.lower() in {".txt", ".csv", ".xlsx", ".zip"})

    def import_new() -> list[dict]:
        with connect(db) as con:
            results = import_paths(con, paths)
            new = [r for r in results if not r.skipped]
            ranges = [con.execute("SELECT min(coverage_start), max(coalesce(coverage_end, DATE '9999-12-31')) "
                                  "FROM ref_files WHERE kind = ? AND version = ?", [r.kind, r.version]).fetchall()[0]
                      for r in new]
        return [{"source": r.source, "kind": r.kind, "version": r.version, "start": s, "end": e}
                for r, (s, e) in zip(new, ranges, strict=True)]

    label = landing.scope_label(folder, scope)
    try:
        with warehouse_lock(db):
            imported = _step("import-reference", import_new)
            for item in imported:        # dates covered by a new version are audited again
                _step("mark-dates", landing.mark_quarter, db, label, item["start"], item["end"])
    except ClaimAuditError as exc:
        return Failed(message=str(exc))
    create_markdown_artifact(key="claimaudit-refdata", description="reference files imported",
                             markdown="# Reference files imported\n\n" + (json.dumps(imported, default=str)
                                                                          if imported else "none new"))
    return _landing_run(folder, db, scope, profile, mapping, out_root, False, data_quality, 0, notify_url)


def deployments(*, folder: str, db: str, refdata_folder: str | None = None, scope: str | None = None,
                profile: str = pipeline.DEFAULT_PROFILE, mapping: str | None = None, out_root: str = "audit-out",
                timezone: str = "America/New_York", data_quality: bool = True, notify_url: str | None = None,
                nightly: str = "30 2 * * *", weekly: str = "0 4 * * 0", quarterly: str = "0 5 2 1,4,7,10 *",
                only: list[str] | None = None) -> list:
    """The three deployments with their cron schedules in an explicit time zone."""
    common = dict(folder=str(folder), db=str(db), scope=scope, profile=profile, mapping=mapping,
                  out_root=str(out_root), data_quality=data_quality, notify_url=notify_url)
    made = {
        "nightly": lambda: landing_audit.to_deployment(
            "nightly", schedules=[Cron(nightly, timezone=timezone)], parameters=common,
            description="New and corrected files in the landing folder, changed days only"),
        "weekly-full": lambda: landing_audit.to_deployment(
            "weekly-full", schedules=[Cron(weekly, timezone=timezone)], parameters={**common, "full": True},
            description="Every day of the ledger re-audited"),
    }
    if refdata_folder:
        made["quarterly-refdata"] = lambda: refdata_refresh.to_deployment(
            "quarterly-refdata", schedules=[Cron(quarterly, timezone=timezone)],
            parameters={**common, "refdata_folder": str(refdata_folder)},
            description="Import the quarter's CMS files; re-audit the dates they cover")
    unknown = set(only or []) - set(made)
    if unknown:
        raise ClaimAuditError(f"unknown deployment(s) {', '.join(sorted(unknown))}; choose from {', '.join(made)}"
                              + ("" if refdata_folder else " (quarterly-refdata needs --refdata-folder)"))
    return [make() for name, make in made.items() if not only or name in only]


def serve_all(**kwargs) -> None:
    serve(*deployments(**kwargs))
