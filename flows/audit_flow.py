"""Prefect flow for one audit: ingest -> data quality -> reference check -> rules -> outputs.

One task per step, never per row. Tasks pass the warehouse path and run id, not data frames, and
have caching and result persistence off: claim data (PHI) never reaches Prefect's result storage.
Runs with no server configured (Prefect starts a temporary one) or against a real server named by
PREFECT_API_URL. Deploy with the entrypoint ``flows/audit_flow.py:audit_flow``.
"""

from __future__ import annotations

import contextlib
import time

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from claimaudit import pipeline, progress
from claimaudit.errors import ClaimAuditError, describe
from claimaudit.locking import warehouse_lock
from claimaudit.notify import summary_markdown
from claimaudit.partition import audit_partition
from claimaudit.rules import catalogue

_TASK = dict(cache_policy=NO_CACHE, persist_result=False, log_prints=False)


def _guarded(step):
    """Run a pipeline step; a failure (bad input, unknown profile, a full disk...) comes back as data.

    Prefect logs a traceback for any exception raised in a task, and stores its message in its
    database; a user's bad file deserves one clear line instead (errors.describe: paths and codes,
    no claim values), so the flow turns these into a Failed state with that line as its message.
    """
    def run(*args, **kwargs) -> dict:
        try:
            return step(*args, **kwargs)
        except Exception as exc:
            return {"error": describe(exc)}
    run.__name__ = step.__name__
    run.__doc__ = step.__doc__
    return run


start_run = task(name="start-run", **_TASK)(_guarded(pipeline.start_run))
def _ingest(db: str, run_id: str, inputs: list[str], mapping: str | None, profile: str, out_dir: str,
            allow_unmapped: bool = False) -> dict:
    counts = pipeline.ingest(db, run_id, inputs, mapping=mapping, profile=profile, out_dir=out_dir,
                             allow_unmapped=allow_unmapped)
    return {k: counts[k] for k in ("read", "loaded", "quarantined")}


def _outputs(db: str, run_id: str, out_dir: str, timings: dict) -> dict:
    return pipeline.write_outputs(db, run_id, out_dir, timings=timings)


ingest = task(name="ingest", **_TASK)(_guarded(_ingest))
def _quality(db: str, run_id: str, out_dir: str) -> dict:
    result = pipeline.check_quality(db, run_id, out_dir)
    return {k: result[k] for k in ("expectations", "failed", "rows_quarantined", "rows_flagged", "seconds")}


quality = task(name="data-quality", **_TASK)(_guarded(_quality))
reference_check = task(name="reference-check", **_TASK)(_guarded(pipeline.check_reference))
prior_ytd = task(name="therapy-ytd", **_TASK)(_guarded(pipeline.therapy_ytd))
rules = task(name="rules", **_TASK)(_guarded(pipeline.apply_rules))
outputs = task(name="outputs", **_TASK)(_guarded(_outputs))
rules_partition = task(name="rules-partition", **_TASK)(audit_partition)


@flow(name="claimaudit-audit", log_prints=False, persist_result=False)
def audit_flow(inputs: list[str], db: str = "claimaudit.duckdb", mapping: str | None = None,
               profile: str = pipeline.DEFAULT_PROFILE, out: str | None = None, data_quality: bool = True,
               scope: str | None = None, wait: float = 0, partitions: int = 1, allow_unmapped: bool = False,
               therapy_ytd_file: str | None = None):
    """Audit ``inputs`` into the warehouse ``db``; returns the run summary (counts only).

    ``partitions > 1`` runs the rules on that many patient-hash partitions as parallel tasks of this
    flow's task runner: threads by default, a Dask cluster with ``audit_flow.with_options(
    task_runner=DaskTaskRunner(...))`` (``claimaudit audit --dask-workers N`` / ``--dask-address``)."""
    try:
        from claimaudit.ingest.formats import check_inputs

        check_inputs([*inputs, *([therapy_ytd_file] if therapy_ytd_file else [])])   # before anything is created
        with warehouse_lock(db, wait=wait):
            return _audit(inputs, db, mapping, profile, out, data_quality, scope, partitions, allow_unmapped,
                          therapy_ytd_file)
    except ClaimAuditError as exc:          # a missing input, the warehouse busy, a failed run
        return Failed(message=str(exc))


def _run_partitions(work: str, parts: list[int], run_id: str) -> list[dict]:
    """Submit one task per partition to the flow's task runner; tasks get paths, return counts."""
    futures = [rules_partition.submit(work, part, run_id) for part in parts]
    return [f.result() for f in futures]


def _partitioned_rules(db: str, run_id: str, partitions: int) -> dict:
    try:
        return pipeline.apply_rules(db, run_id, partitions=partitions, run_partitions=_run_partitions)
    except Exception as exc:
        return {"error": describe(exc)}


def _run_log(adapter):
    """Write one INFO line to the flow run's log in the Prefect API, whatever PREFECT_LOGGING_LEVEL says
    about the console (claimaudit keeps Prefect's console at WARNING; the UI should still tell the story)."""
    import logging

    def emit(text: str) -> None:
        message, kwargs = adapter.process(text, {})
        record = adapter.logger.makeRecord(adapter.logger.name, logging.INFO, __file__, 0, message, (), None,
                                           extra=kwargs.get("extra"))
        for handler in adapter.logger.handlers:            # the API handler only: not the console
            handler.handle(record)
    return emit


def _name_flow_run(run_id: str, scope: str | None) -> None:
    """Name the Prefect flow run after the claimaudit run (and its scope) instead of a random name."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    # a name is a convenience, never a failure
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, name=f"{run_id} ({scope})" if scope else run_id)


def _audit(inputs, db, mapping, profile, out, data_quality, scope, partitions, allow_unmapped, therapy_ytd_file):
    started = time.perf_counter()
    run = start_run(db, profile=profile, mapping=mapping, out=out, scope=scope,
                    skipped=[] if data_quality else ["data_quality"])
    if "error" in run:
        return Failed(message=run["error"])
    run_id, out_dir = run["run_id"], run["out_dir"]
    _name_flow_run(run_id, scope)
    # the stage lines (counts and seconds, never claim data) become the flow run's log in the Prefect UI
    with pipeline.failing_run(db, run_id), progress.forward(_run_log(get_run_logger())):   # interrupts too
        return _audit_steps(inputs, db, mapping, profile, data_quality, partitions, allow_unmapped, therapy_ytd_file,
                            run_id, out_dir, started)


def _audit_steps(inputs, db, mapping, profile, data_quality, partitions, allow_unmapped, therapy_ytd_file, run_id,
                 out_dir, started):
    timings: dict = {}

    def step(name, fn, *args):
        t = time.perf_counter()
        result = fn(*args)
        timings[name] = round(time.perf_counter() - t, 3)
        if "error" in result:
            pipeline.fail_run(db, run_id, result["error"])
        return result

    pipeline._crash_point("ingest")
    counts = step("ingest", ingest, db, run_id, [str(p) for p in inputs], mapping, profile, out_dir, allow_unmapped)
    if "error" in counts:
        return Failed(message=counts["error"])
    if therapy_ytd_file:
        ytd = step("therapy_ytd", prior_ytd, db, run_id, therapy_ytd_file)
        if "error" in ytd:
            return Failed(message=ytd["error"])
    if data_quality:
        dq = step("data_quality", quality, db, run_id, out_dir)
        if "error" in dq:
            return Failed(message=dq["error"])
        timings.update(pipeline.quality_timings(dq))
    ref = step("reference", reference_check, db, run_id)
    if "error" in ref:
        return Failed(message=ref["error"])
    rule_result = (step("rules", rules, db, run_id) if partitions <= 1 else
                   step("rules", _partitioned_rules, db, run_id, partitions))
    if "error" in rule_result:
        return Failed(message=rule_result["error"])
    timings["rule_files"] = rule_result["timings"]
    if rule_result.get("partitions"):
        timings["rule_partitions"] = rule_result["partitions"]
    timings["total"] = round(time.perf_counter() - started, 3)
    summary = outputs(db, run_id, out_dir, timings)
    if "error" in summary:
        return Failed(message=summary["error"])
    create_markdown_artifact(key="claimaudit-summary", markdown=summary_markdown(summary),
                             description="claimaudit run summary (counts only, no claim data)")
    create_table_artifact(key="claimaudit-findings-by-rule",
                          table=[{"rule": rule, "name": catalogue.name(rule), "findings": n,
                                  "dollars_at_risk": summary["findings"]["dollars_by_rule"].get(rule, 0.0)}
                                 for rule, n in summary["findings"]["by_rule"].items()],
                          description="Findings by rule (counts only, no claim data)")
    return summary


if __name__ == "__main__":
    import sys

    audit_flow(sys.argv[1:])
