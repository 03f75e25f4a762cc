"""Validate one run's lines with Great Expectations (GX Core 1.x) on the DuckDB SQL path.

Run as a subprocess by claimaudit.quality.runner, started with the audit (by the command line, before
it imports the engine): ``python -m claimaudit.quality.gx_worker --parent PID --suite FILE`` imports
GX and builds the suite at once, then reads its arguments file's path from stdin (:func:`main`). A
separate process because GX keeps its DuckDB connection open for the life of the process (the
warehouse must be writable again right after) and imports in ~3-5 s. It reads the warehouse read-only
and writes nothing but the results JSON, then ends at once (``os._exit``: no teardown).

Why the SQL path: on 1M lines it validates the suite in well under a second, against ~5 s for the
pandas path (STACK.md). It needs one workaround: GX returns a pooled connection before reading the
results, which duckdb-engine then empties (``MetricResolutionError: list index out of range``).
Registering the duckdb dialect as one that needs a persisted connection fixes it. GX checks that
list both by ``.value`` and by string equality, hence the str subclass.
tests/test_quality.py::test_gx_duckdb_workaround_still_needed_and_working fails loudly if an upgrade
breaks this.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date


class _Dialect(str):
    @property
    def value(self) -> str:
        return str(self)


def patch_duckdb_persisted_connection() -> None:
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    if not any(str(d) == "duckdb" or getattr(d, "value", None) == "duckdb"
               for d in engine._PERSISTED_CONNECTION_DIALECTS):
        engine._PERSISTED_CONNECTION_DIALECTS = (*engine._PERSISTED_CONNECTION_DIALECTS, _Dialect("duckdb"))


UNEXPECTED_ROWS = "unexpected_rows_expectation"
COUNT_ONLY = "unexpected_rows_count"          # the count-only variant below, registered by GX under this type


def register_count_only_unexpected_rows() -> None:
    """GX's ``unexpected_rows_expectation`` runs its query twice: for up to 200 of the rows (metric
    ``unexpected_rows_query.table``), which a SUMMARY result then drops, and for their count
    (``unexpected_rows_query.row_count``, GX PR #10604). At 10M lines the suite's NPI check-digit and
    line-key queries took ~1.1 s each time. The runner fetches the rows itself (hits and examples, only
    for an expectation that failed), so the suite's unexpected-rows expectations run as this subclass,
    which depends on the count alone; the results name the suite's type."""
    from great_expectations.expectations.core.unexpected_rows_expectation import UnexpectedRowsExpectation

    class UnexpectedRowsCount(UnexpectedRowsExpectation):       # GX registers it as COUNT_ONLY
        metric_dependencies = ("unexpected_rows_query.row_count",)

        def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None) -> dict:
            count = metrics["unexpected_rows_query.row_count"]
            return {"success": count == 0, "result": {"observed_value": count}}

    if UnexpectedRowsCount.expectation_type != COUNT_ONLY:
        raise RuntimeError(f"Great Expectations registered the count-only expectation as "
                           f"{UnexpectedRowsCount.expectation_type!r}, not {COUNT_ONLY!r}")


def _examples(result: dict) -> list:
    rows = result.get("partial_unexpected_index_list") or result.get("details", {}).get("unexpected_rows") or []
    return [{k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in dict(r).items()}
            for r in rows[:20]]


def prepare(suite_file: str) -> dict:
    """Everything that does not need the run: Great Expectations itself (~2-5 s to import), the SQL
    dialect, an ephemeral context and the suite. Done while the audit ingests (``main``)."""
    started = time.perf_counter()
    import duckdb_engine  # noqa: F401  (the data source's SQLAlchemy dialect: part of the fixed cost)
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    patch_duckdb_persisted_connection()
    register_count_only_unexpected_rows()
    imported = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    with open(suite_file, encoding="utf-8") as fh:
        spec = json.load(fh)
    today = date.today().isoformat()
    for e in spec["expectations"]:         # "$today" in a kwarg: the run's date (e.g. DOS not in the future)
        e["kwargs"] = {k: today if v == "$today" else v for k, v in e["kwargs"].items()}
    suite = context.suites.add(gx.ExpectationSuite(
        name=spec["name"], meta=spec.get("meta", {}),
        expectations=[ExpectationConfiguration(type=COUNT_ONLY if e["type"] == UNEXPECTED_ROWS else e["type"],
                                               kwargs=e["kwargs"], meta=e["meta"]).to_domain_obj()
                      for e in spec["expectations"]]))
    return {"gx": gx, "context": context, "suite": suite, "suite_file": suite_file, "today": today,
            "import": round(imported - started, 3), "setup": round(time.perf_counter() - imported, 3)}


def validate(args: dict, prepared: dict | None = None) -> dict:
    if prepared is None or prepared["suite_file"] != args["suite"] or prepared["today"] != date.today().isoformat():
        prepared = prepare(args["suite"])
    gx, context, suite = prepared["gx"], prepared["context"], prepared["suite"]
    started = time.perf_counter()
    source = context.data_sources.add_sql(
        name="warehouse", connection_string=f"duckdb:///{args['db']}?access_mode=read_only",
        # the audit's memory setting, spilling into the run's private dq folder (docs/scaling.md)
        kwargs={"connect_args": {"config": {"memory_limit": args["memory_limit"], "temp_directory": args["spill"]}}}
        if args.get("memory_limit") else {})
    batch_definition = source.add_table_asset(name="claim_lines", table_name=args["view"]) \
        .add_batch_definition_whole_table("run")
    definition = context.validation_definitions.add(gx.ValidationDefinition(
        name=f"claim_lines {args['run_id']}", data=batch_definition, suite=suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="claimaudit", validation_definitions=[definition], actions=[],
        result_format={"result_format": "SUMMARY", "unexpected_index_column_names": ["claim_id", "line_number"],
                       "return_unexpected_index_query": True, "partial_unexpected_count": 20}))
    validating = time.perf_counter()
    run = checkpoint.run()
    validated = time.perf_counter()
    validation = next(iter(run.run_results.values()))
    results = []
    for r in validation.results:
        meta, res = r.expectation_config.meta or {}, r.result or {}
        raised = bool(r.exception_info and r.exception_info.get("raised_exception"))
        kind = UNEXPECTED_ROWS if r.expectation_config.type == COUNT_ONLY else r.expectation_config.type
        count = res.get("unexpected_count")
        if count is None and kind == UNEXPECTED_ROWS:
            count = res.get("observed_value")
        query = res.get("unexpected_index_query")
        results.append({
            "id": meta.get("id"), "level": meta.get("level", "warning"), "type": kind,
            "quarantine_reason": meta.get("quarantine_reason"),
            "description": meta.get("description", ""), "action": meta.get("action", ""),
            "kwargs": {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"},
            "success": bool(r.success), "unexpected_count": int(count or 0),
            "unexpected_percent": res.get("unexpected_percent"),
            "examples": _examples(res),
            "index_query": str(query).strip().rstrip(";") if query else None,
            "error": (r.exception_info or {}).get("exception_message") if raised else None,
        })
    return {"results": results, "statistics": dict(validation.statistics),
            "seconds": {"import": prepared["import"], "setup": round(prepared["setup"] + validating - started, 3),
                        "validate": round(validated - validating, 3)}}


def _die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux to kill this worker when the audit that started it dies (even by kill -9): an orphan
    would hold the warehouse open and keep its results file (claim ids, NPIs) on disk."""
    if parent_pid is None or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:                                   # the parent died before the call
        os._exit(1)


def main(argv: list[str]) -> int:
    """``gx_worker --parent PID --suite FILE``: import GX and build the suite now, then read the
    arguments file's path from stdin (sent when the audit reaches its data-quality step; end of input =
    not needed, exit quietly)."""
    parent = int(argv[argv.index("--parent") + 1])
    _die_with_parent(parent)
    prepared = prepare(argv[argv.index("--suite") + 1])    # the slow part, done while the audit ingests
    prepared["ready_at"] = time.time()
    path = sys.stdin.readline().strip()
    if not path:
        return 0
    with open(path, encoding="utf-8") as fh:
        arguments = json.load(fh)
    output = validate(arguments, prepared)
    # how long the audit's data-quality step waited for the import it started at the beginning of the run
    output["seconds"]["waited_for_import"] = round(max(0.0, prepared["ready_at"] - arguments["handed_over_at"]), 3) \
        if "handed_over_at" in arguments else None
    with open(arguments["out"], "w", encoding="utf-8") as fh:
        json.dump(output, fh, default=str)
    # Done: leave without Python's teardown of GX, SQLAlchemy and DuckDB objects, which took ~1.1 s
    # after the results were written (the audit waits for this process to end, because its read-only
    # connection keeps the warehouse from being written). The kernel releases the file lock either way.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
