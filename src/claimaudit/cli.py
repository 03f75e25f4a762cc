"""The ``claimaudit`` command: a thin skin over the library (each command calls one function)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from claimaudit import progress
from claimaudit.defaults import DEFAULT_DB, DEFAULT_PROFILE
from claimaudit.errors import ClaimAuditError, RunFailed, Terminated, describe

# The engine (DuckDB, Polars, the pipeline) is imported inside the commands: `claimaudit audit` starts
# its data-quality worker first, so Great Expectations' import (3-6 s) overlaps everything else.

# piped output (cron logs, CI) gets room for whole rows instead of 80 columns of ellipses
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 220)
db_option = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_DB,
                         show_default=True, envvar="CLAIMAUDIT_DB", help="DuckDB warehouse file.")
mapping_option = click.option("--mapping", help="Column mapping: a preset name (see docs/mappings.md) or a YAML file.")
profile_option = click.option("--profile", default=DEFAULT_PROFILE, show_default=True,
                              help="Rule profile for lines whose payer is not mapped to one.")
out_option = click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                          help="Run folder (default ./audit-out/<run_id>/).")
wait_option = click.option("--wait", type=float, default=0, show_default=True,
                           help="Seconds to wait for another run holding the warehouse (default: fail at once).")
ytd_option = click.option("--therapy-ytd", "therapy_ytd_file", type=click.Path(dir_okay=False, path_type=Path),
                          help="CSV of the beneficiaries' prior year-to-date therapy amounts (patient_id, year, "
                               "pt_slp_amount, ot_amount) that the KX check (MOD-006) starts from.")
unmapped_option = click.option("--allow-unmapped-columns", "allow_unmapped", is_flag=True,
                               help="Audit even when an input column that no mapping key loads holds data (the "
                                    "summary lists each such column and its number of values).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="claimaudit")
def cli() -> None:
    """Audit claim-line extracts against NCCI PTP/MUE edits, therapy timing and modifier rules."""


def _print_summary(summary: dict) -> None:
    from claimaudit import coverage
    from claimaudit.rules import catalogue

    f = summary["findings"]
    console.print(f"claimaudit run {summary['run_id']}: read {summary['read']} = loaded {summary['loaded']} "
                  f"+ quarantined {summary['quarantined']}"
                  + ("" if summary["reconciled"] else "  [bold red]DOES NOT RECONCILE[/]"))
    for warning in (w for f in summary.get("inputs", []) for w in (f.get("warnings") or [])):
        console.print(f"[yellow]warning:[/] {warning}")
    if summary["quarantine_reasons"]:
        console.print("quarantined: " + ", ".join(f"{r} {n}" for r, n in summary["quarantine_reasons"].items()))
    if not summary["loaded"]:
        console.print("[bold red]nothing was loaded: no line was audited[/]"
                      + (" (every row was quarantined: see quarantine.csv for the reasons)" if summary["read"] else
                         " (the inputs hold no rows)"))
    ps = summary.get("profile_sources")
    if ps and (ps["file"] or ps["payer_map"]):     # say when the run's --profile was not what most lines used
        console.print(f"profiles: {ps['file']:,} row(s) name their profile in the file, {ps['payer_map']:,} take it "
                      f"from the mapping's payer map, {ps['run_default']:,} the run default "
                      f"({summary.get('profile_default')})")
    console.print(f"findings: {f['total']} ({f['error']} error, {f['warning']} warning, {f['info']} info); "
                  f"${summary['amount_at_risk']:,.2f} at risk")
    dollars = f.get("dollars_by_rule") or {}
    width = max((len(catalogue.label(r)) for r in f["by_rule"]), default=0)
    for rule, n in f["by_rule"].items():
        console.print(f"  {catalogue.label(rule):<{width}}  {n:>7,}" + (f"  ${dollars[rule]:,.2f}" if dollars.get(rule) else ""))
    if f.get("dollars_by_family"):
        console.print("at risk by family: " + ", ".join(f"{k} ${v:,.2f}" for k, v in f["dollars_by_family"].items() if v))
    h = summary.get("history") or {}
    if h.get("previous_run_id"):
        console.print(f"since run {h['previous_run_id']}: {h['new']} new, {h['recurring']} recurring, "
                      f"{h['resolved']} resolved"
                      + (f" ({h['not_compared']} not compared: one of the two runs did not check them)"
                         if h.get("not_compared") else ""))
    for cause in summary.get("unchecked") or []:
        console.print(f"[yellow]unchecked[/] {coverage.line(cause)}", markup=True)
    dq = summary.get("data_quality") or {}
    if dq.get("skipped"):
        console.print("data quality: skipped (--no-data-quality): history does not compare its findings")
    elif dq and not summary["loaded"]:
        console.print("data quality: checked nothing (no lines loaded)")
    elif dq:
        console.print(f"data quality: {dq['expectations']} expectations, "
                      + (f"failed: {', '.join(dq['failed'])}" if dq["failed"] else "all passed")
                      + (f"; Data Docs: {summary['out_dir']}/{dq['data_docs']}" if dq.get("data_docs") else ""))
    d = summary.get("denials")
    if d:
        console.print(f"denials (835): {d['remit_lines']} remit lines, {d['matched']} matched; {d['denied_lines']} denied "
                      f"(${d['denied_dollars']:,.2f}); preventable ${d['preventable_dollars']:,.2f}; "
                      f"{d['denials_not_predicted']} denied line(s) no rule predicted "
                      f"(${d['denials_not_predicted_dollars']:,.2f})")
    if summary["reference"]["starter_set_used"]:
        console.print("[bold yellow]reference: the bundled STARTER set was used - it is NOT the CMS NCCI tables "
                      "(claimaudit refdata import ...)[/]")
    for v in summary["reference"]["versions"]:
        if v["kind"] == "therapy" and v["is_starter"]:
            console.print(f"[yellow]therapy code list: {v['note']}[/]")
    console.print(f"outputs: {summary['out_dir']}/ ({', '.join(summary['outputs'])})")


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@mapping_option
@profile_option
@out_option
@db_option
@click.option("--prefect/--no-prefect", "use_prefect", default=None,
              help="Run as a Prefect flow run (default when a Prefect API is configured: PREFECT_API_URL) or in "
                   "this process (default otherwise; docs/scaling.md).")
@click.option("--scope", help="History label: runs with the same scope are compared (default: the practice's NPIs).")
@click.option("--no-data-quality", is_flag=True,
              help="Skip the Great Expectations suite (faster ad-hoc runs; the summary records it).")
@wait_option
@click.option("--partitions", type=click.IntRange(1), default=1, show_default=True,
              help="Run the rules on this many patient-hash partitions in parallel (docs/scaling.md).")
@click.option("--dask-workers", type=click.IntRange(1), help="Run the partitions on a local Dask cluster of N workers.")
@click.option("--dask-address", help="Run the partitions on an existing Dask cluster (tcp://host:8786).")
@unmapped_option
@ytd_option
@click.option("--strict", is_flag=True, help="Exit 1 when the run loaded no line (everything quarantined or empty).")
def audit(inputs: tuple[Path, ...], mapping: str | None, profile: str, out: Path | None, db: Path,
          use_prefect: bool | None, no_data_quality: bool, scope: str | None, wait: float, partitions: int,
          dask_workers: int | None, dask_address: str | None, allow_unmapped: bool, therapy_ytd_file: Path | None,
          strict: bool) -> None:
    """Audit claim-line extracts (CSV, Parquet, XLSX) and write the run folder."""
    from claimaudit.ingest.formats import check_inputs
    from claimaudit.quality import runner as quality_runner

    check_inputs([*inputs, *([therapy_ytd_file] if therapy_ytd_file else [])])   # before anything starts
    # then Great Expectations imports in its worker while this process imports the engine and ingests
    with quality_runner.started_ahead(not no_data_quality):
        from claimaudit import pipeline
        from claimaudit.warehouse import memory_limit

        memory_limit()
        args = dict(db=str(db), mapping=mapping, profile=profile, out=str(out) if out else None,
                    data_quality=not no_data_quality, scope=scope, wait=wait, partitions=partitions,
                    allow_unmapped=allow_unmapped,
                    therapy_ytd_file=str(therapy_ytd_file) if therapy_ytd_file else None)
        dask = dask_workers or dask_address
        if dask and use_prefect is False:
            raise click.UsageError("--dask-workers/--dask-address run through the Prefect flow; drop --no-prefect")
        if use_prefect is None:      # a visible flow run when a Prefect server records it; no throwaway server
            from claimaudit.flow_loader import prefect_api_configured

            use_prefect = bool(dask) or prefect_api_configured() is not None
        with progress.to_terminal(Console(stderr=True, highlight=False)):    # stage lines on a terminal only
            if not use_prefect:
                summary = pipeline.run_audit([str(p) for p in inputs], **args)
            else:
                from claimaudit.flow_loader import load_audit_flow

                flow = load_audit_flow()
                if dask:
                    flow = flow.with_options(task_runner=dask_task_runner(dask_workers, dask_address))
                    if partitions == 1:
                        args["partitions"] = dask_workers or 2
                state = flow([str(p) for p in inputs], return_state=True, **args)
                if state.is_failed():
                    raise ClaimAuditError(state.message or "the audit flow failed")
                summary = state.result()
    _print_summary(summary)
    if strict and not summary["loaded"]:
        sys.exit(1)


def dask_task_runner(workers: int | None, address: str | None):
    """prefect-dask's DaskTaskRunner: an existing cluster (address) or a LocalCluster of worker processes."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ClaimAuditError("Dask scale-out needs prefect-dask: pip install 'claimaudit[dask]'") from None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "host": "127.0.0.1", "dashboard_address": None})


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@mapping_option
@profile_option
@out_option
@db_option
@click.option("--scope", help="The ledger and history this folder feeds (default: the folder's path).")
@click.option("--full", is_flag=True, help="Re-audit every day of the ledger, not only the changed ones.")
@click.option("--no-data-quality", is_flag=True, help="Skip the Great Expectations suite.")
@click.option("--settle", type=click.FloatRange(0), default=30, show_default=True,
              help="Take a file only once it has not changed for this many seconds (it may still be being "
                   "written); a <file>.done marker takes it at once; 0 for drops that are atomic.")
@wait_option
@click.option("--notify", "notify_url", envvar="CLAIMAUDIT_NOTIFY",
              help="Apprise URL for a completion message (headline numbers only, no claim data).")
@unmapped_option
@ytd_option
def landing(folder: Path, mapping: str | None, profile: str, out: Path | None, db: Path, scope: str | None,
            full: bool, no_data_quality: bool, settle: float, wait: float, notify_url: str | None,
            allow_unmapped: bool, therapy_ytd_file: Path | None) -> None:
    """Incremental audit of a landing folder: new or corrected files only, history merged (docs/scheduling.md)."""
    from claimaudit import pipeline
    from claimaudit.notify import notify

    summary = pipeline.run_landing(folder, db=str(db), mapping=mapping, profile=profile,
                                   out=str(out) if out else None, scope=scope, full=full,
                                   data_quality=not no_data_quality, settle_seconds=settle, wait=wait,
                                   allow_unmapped=allow_unmapped, therapy_ytd_file=therapy_ytd_file)
    info = summary["landing"]
    console.print(f"landing {folder}: {len(info['files_new'])} new file(s), {len(info['files_skipped'])} already "
                  f"seen (skipped), {len(info['files_deferred'])} still being written; {info['claims_replaced']} "
                  f"claim(s) replaced; audited {info['lines_audited']} lines on {info['days_audited']} changed days"
                  + (f"; recovered abandoned run(s) {', '.join(info['abandoned_runs'])}" if info["abandoned_runs"] else ""))
    if info.get("files_ignored"):
        console.print(f"[yellow]not read[/] (neither an extract by its suffix nor X12 by its content): "
                      f"{', '.join(info['files_ignored'])}")
    _print_summary(summary)
    if notify_url:
        notify(notify_url, summary)


@cli.command()
@click.option("--landing", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Landing folder the billing system drops extracts into.")
@db_option
@click.option("--refdata-folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the quarter's CMS files (enables the quarterly-refdata deployment).")
@click.option("--out-root", type=click.Path(file_okay=False, path_type=Path), default=Path("audit-out"),
              show_default=True, help="Each run writes <out-root>/<run_id>/.")
@click.option("--scope", help="Ledger and history label (default: the landing folder's path).")
@profile_option
@mapping_option
@click.option("--timezone", default="America/New_York", show_default=True, help="Time zone of the cron schedules.")
@click.option("--nightly", default="30 2 * * *", show_default=True, help="Cron of the nightly landing audit.")
@click.option("--weekly", default="0 4 * * 0", show_default=True, help="Cron of the weekly full re-audit.")
@click.option("--quarterly", default="0 5 2 1,4,7,10 *", show_default=True, help="Cron of the reference refresh.")
@click.option("--only", multiple=True, help="Serve only these deployments (nightly, weekly-full, quarterly-refdata).")
@click.option("--no-data-quality", is_flag=True, help="Skip the Great Expectations suite in scheduled runs.")
@click.option("--notify", "notify_url", envvar="CLAIMAUDIT_NOTIFY", help="Apprise URL for completion messages.")
def serve(folder: Path, db: Path, refdata_folder: Path | None, out_root: Path, scope: str | None, profile: str,
          mapping: str | None, timezone: str, nightly: str, weekly: str, quarterly: str, only: tuple[str, ...],
          no_data_quality: bool, notify_url: str | None) -> None:
    """Serve the scheduled deployments with Prefect (needs PREFECT_API_URL; see docs/scheduling.md)."""
    from claimaudit.flow_loader import load_scheduled

    load_scheduled().serve_all(folder=str(folder.resolve()), db=str(db.resolve()),
                               refdata_folder=str(refdata_folder.resolve()) if refdata_folder else None,
                               out_root=str(out_root.resolve()), scope=scope, profile=profile, mapping=mapping,
                               timezone=timezone, nightly=nightly, weekly=weekly, quarterly=quarterly,
                               only=list(only) or None, data_quality=not no_data_quality, notify_url=notify_url)


@cli.command("x12-lines")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for lines.parquet and rejects.parquet.")
def x12_lines(path: Path, out: Path) -> None:
    """Stream an 837P file into canonical claim lines (Parquet) at flat memory, whatever its size.

    lines.parquet can then be audited like any extract: claimaudit audit OUT/lines.parquet."""
    from claimaudit.ingest.readers import transaction_kind
    from claimaudit.x12.claims837 import write_837_parquet
    from claimaudit.x12.segments import head, separators

    separators(path, head(path))                      # one clear line when it is not an X12 interchange
    kind = transaction_kind(path)
    if kind != "837":
        raise ClaimAuditError(f"{path}: X12 transaction set {kind}: x12-lines reads 837P claims only")
    counts = write_837_parquet(path, out)
    console.print(f"{path}: {counts['lines']:,} service lines -> {out / 'lines.parquet'}; "
                  f"{counts['rejects']:,} rejected -> {out / 'rejects.parquet'}")
    for warning in counts["warnings"]:
        console.print(f"warning: {warning}")


@cli.group()
def refdata() -> None:
    """CMS reference data (NCCI PTP and MUE files)."""


@refdata.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--version", "version", help="Version when the file name does not carry it (v322r0; MUE: 2026-07-01).")
@click.option("--parts", type=click.IntRange(1, 99),
              help="How many part files the PTP release has (default: as its CMS zip holds, else 4). A release is "
                   "used only when all its parts are loaded.")
@db_option
@wait_option
def refdata_import(paths: tuple[Path, ...], version: str | None, parts: int | None, db: Path, wait: float) -> None:
    """Import CMS PTP/MUE files (.txt .csv .xlsx .zip) as CMS publishes them: all of them, or none."""
    from claimaudit.locking import warehouse_lock
    from claimaudit.refdata import import_paths
    from claimaudit.refdata.store import release_status
    from claimaudit.warehouse import connect

    for path in paths:
        if not path.exists():
            raise ClaimAuditError(f"{path}: no such file")
    with warehouse_lock(db, wait=wait), connect(db) as con:
        results = import_paths(con, list(paths), version=version, parts=parts)
        for result in results:
            console.print(result.line())
        for line in release_status(con, {(r.kind, r.version) for r in results}):
            console.print(f"[bold yellow]{line}[/]")


@refdata.command("list")
@db_option
def refdata_list(db: Path) -> None:
    """Show the loaded reference versions, their coverage, and which are in use."""
    from claimaudit.refdata import ensure_reference, list_reference
    from claimaudit.warehouse import connect

    with connect(db) as con:
        ensure_reference(con)
        frame = list_reference(con)
    table = Table("kind", "version", "parts", "rows", "bad rows", "coverage from", "to", "status", "files")
    for r in frame.iter_rows(named=True):
        table.add_row(r["kind"].upper(), r["version"] + (" (STARTER)" if r["starter"] else ""), r["parts"] or "",
                      str(r["rows"]), str(r["bad_rows"]), str(r["coverage_start"] or ""),
                      str(r["coverage_end"] or ("next version" if r["kind"] == "mue" else "open")),
                      r["status"], r["files"])
    console.print(table)


@cli.command()
@db_option
@click.option("--limit", default=20, show_default=True)
def runs(db: Path, limit: int) -> None:
    """List past runs, newest first."""
    from claimaudit.locking import WarehouseBusy, warehouse_lock
    from claimaudit.warehouse import connect

    if db.exists():
        with contextlib.suppress(WarehouseBusy), warehouse_lock(db):
            pass                                      # no run alive: dead 'running' runs become abandoned
    with connect(db, read_only=True) as con:
        rows = con.execute("SELECT run_id, status, started_at, profile_default, rows_read, rows_loaded, "
                           "rows_quarantined, findings, findings_new, findings_resolved, starter_reference, "
                           "scope_key, out_dir FROM runs ORDER BY started_at DESC LIMIT ?", [limit]).fetchall()
    table = Table("run", "status", "started", "profile", "read", "loaded", "quarantined", "findings", "new",
                  "resolved", "reference", "scope", "out")
    for r in rows:
        table.add_row(r[0], r[1], f"{r[2]:%Y-%m-%d %H:%M:%S}", r[3], *(str(v) if v is not None else "" for v in r[4:10]),
                      "starter" if r[10] else "CMS" if r[10] is not None else "", r[11] or "", r[12] or "")
    console.print(table)


@cli.command()
@click.argument("run_id")
@db_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write here instead of the run's folder.")
@click.option("--force", is_flag=True, help="Overwrite the outputs already in the folder.")
def report(run_id: str, db: Path, out: Path | None, force: bool) -> None:
    """Re-write a past run's outputs from the warehouse (into --out, or its own folder if they are gone)."""
    from claimaudit import pipeline
    from claimaudit.locking import warehouse_lock
    from claimaudit.warehouse import connect, one

    if not db.exists():
        raise ClaimAuditError(f"no run {run_id!r} in {db} (see `claimaudit runs`)")
    with warehouse_lock(db):
        with connect(db) as con:
            row = one(con, "SELECT out_dir, status, timings FROM runs WHERE run_id = ?", [run_id])
        if row is None:
            raise ClaimAuditError(f"no run {run_id!r} in {db} (see `claimaudit runs`)")
        if row[1] != "completed":
            raise ClaimAuditError(f"run {run_id} is {row[1]}: nothing to report")
        target = out or Path(row[0])
        existing = [name for name in pipeline.OUTPUTS if (target / name).exists()]
        if existing and not force:
            raise ClaimAuditError(f"{target} already holds this run's outputs ({', '.join(existing)}): pass --out "
                                  "NEW_FOLDER to write them elsewhere, or --force to overwrite them")
        target.mkdir(parents=True, exist_ok=True)
        summary = pipeline.write_outputs(db, run_id, target, timings=json.loads(row[2] or "{}"), finish=False)
    _print_summary(summary)


@cli.command()
@click.option("--scope", help="Every run of this --scope label, and its landing ledger.")
@click.option("--run", "run_ids", multiple=True, help="This run (repeatable).")
@click.option("--before", type=click.DateTime(formats=["%Y-%m-%d"]), help="Every run started before this date.")
@click.option("--outputs", is_flag=True, help="Also delete those runs' output files (findings, reports, ...).")
@click.option("--no-compact", is_flag=True, help="Skip rewriting the warehouse file (deleted rows then stay in its "
                                                 "free blocks until overwritten).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
@wait_option
def purge(scope: str | None, run_ids: tuple[str, ...], before, outputs: bool, no_compact: bool, yes: bool, db: Path,
          wait: float) -> None:
    """Remove a client's claim data from the warehouse (docs/security.md)."""
    from claimaudit.locking import warehouse_lock
    from claimaudit.runs import purge as purge_runs

    if not (scope or run_ids or before):
        raise click.UsageError("say what to purge: --scope LABEL, --run RUN_ID or --before YYYY-MM-DD")
    if not yes:
        click.confirm(f"Delete the matching runs' claim data from {db}" + (" and their output files" if outputs else "")
                      + "?", abort=True)
    with warehouse_lock(db, wait=wait):
        done = purge_runs(db, scope=scope, run_ids=list(run_ids), before=before, outputs=outputs,
                          compact=not no_compact)
    console.print(f"purged {done['runs']} run(s), {done['rows']:,} row(s)"
                  + (f", {done.get('files', 0)} output file(s)" if outputs else "")
                  + ("; warehouse file rewritten" if done["compacted"] else ""))


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
@db_option
def diff(run_a: str, run_b: str, db: Path) -> None:
    """List the findings that changed from RUN_A to RUN_B (new and resolved)."""
    from claimaudit import history
    from claimaudit.warehouse import connect, one

    with connect(db, read_only=True) as con:
        for run in (run_a, run_b):
            if not one(con, "SELECT 1 FROM runs WHERE run_id = ?", [run]):
                raise ClaimAuditError(f"no run {run!r} in {db} (see `claimaudit runs`)")
        counts = history.diff_counts(con, run_a, run_b)
        changes = history.diff(con, run_a, run_b)
    console.print(f"{run_a} -> {run_b}: {counts['new']} new, {counts['recurring']} recurring, "
                  f"{counts['resolved']} resolved")
    table = Table("change", "rule", "severity", "claim:line", "code", "related", "at risk", "message")
    for r in changes.iter_rows(named=True):
        table.add_row(r["change"], r["rule_id"], r["severity"], f"{r['claim_id']}:{r['line_number']}",
                      r["procedure_code"] or "", r["related_code"] or "",
                      f"{r['amount_at_risk']:,.2f}" if r["amount_at_risk"] is not None else "", r["message"])
    console.print(table)


def main() -> None:
    """The command line: every failure ends with one line on stderr and a non-zero exit code
    (2: the input or the command cannot be used; 1: the surroundings failed, e.g. a full disk;
    130: Ctrl-C; 143: SIGTERM). Runs that stop this way are marked failed in the warehouse."""
    from claimaudit import signals
    from claimaudit.errors import as_interrupt

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    signals.install()
    try:
        # click's own main() would turn Ctrl-C into a bare "Aborted!"; invoke the command ourselves
        with cli.make_context("claimaudit", sys.argv[1:]) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as exc:              # --help, --version
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("error: aborted", markup=False)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ClaimAuditError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1 if isinstance(exc, RunFailed) else 2)
    except BaseException as exc:
        interrupt = as_interrupt(exc)
        if interrupt is not None:
            note = getattr(exc, "claimaudit_note", None) or "no run was in progress"
            err.print(f"error: {describe(interrupt)}; {note}", markup=False)
            sys.exit(143 if isinstance(interrupt, Terminated) else 130)
        import duckdb

        if isinstance(exc, (OSError, duckdb.Error)):
            err.print(f"error: {describe(exc)}; no run was started, or it was marked failed", markup=False)
            sys.exit(1)
        raise
