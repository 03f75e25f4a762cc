"""The Prefect flow runs the same steps as tasks, and keeps claim data out of Prefect's storage."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
from prefect.cache_policies import NO_CACHE

from claimaudit.flow_loader import load_audit_flow
from conftest import SAMPLE


def test_flow_audits_the_sample_without_persisting_claim_data(prefect_harness, tmp_path):
    from prefect.settings import PREFECT_HOME

    flow = load_audit_flow()
    storage = Path(PREFECT_HOME.value()) / "storage"
    before = set(storage.rglob("*")) if storage.exists() else set()
    state = flow([str(SAMPLE)], db=str(tmp_path / "w.duckdb"), out=str(tmp_path / "run"), return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert (summary["read"], summary["loaded"], summary["quarantined"]) == (669, 664, 5)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["run_id"] == summary["run_id"]
    assert pl.read_parquet(tmp_path / "run" / "findings.parquet").height == summary["findings"]["total"]
    after = set(storage.rglob("*")) if storage.exists() else set()
    assert after == before, "Prefect persisted task results"
    # the run page shows the result: a markdown summary and a findings-by-rule table (counts only)
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {"claimaudit-summary", "claimaudit-findings-by-rule"}
    assert f"read {summary['read']} = loaded {summary['loaded']}" in by_key["claimaudit-summary"].data
    table = by_key["claimaudit-findings-by-rule"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert {r["rule"]: r["findings"] for r in table} == summary["findings"]["by_rule"]
    assert "patient" not in json.dumps(table).lower() and "PT1" not in by_key["claimaudit-summary"].data
    # the run is named by its claimaudit run id, and its log tells the stages (counts and seconds only)
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).name == summary["run_id"]
        logs = [log.message for log in client.read_logs(log_filter=LogFilter(
            flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))]
    text = "\n".join(logs)
    for line in ("ingest: done in", "669 lines read, 665 loaded, 4 quarantined", "data quality: done in",
                 "rules: ncci_ptp.sql done in", "outputs: done in"):
        assert line in text, (line, text)
    assert "PT2" not in text and "CLM0" not in text


def test_flow_turns_a_bad_input_into_a_failed_state_with_one_line(prefect_harness, tmp_path):
    flow = load_audit_flow()
    state = flow([str(tmp_path / "nope.csv")], db=str(tmp_path / "w.duckdb"), out=str(tmp_path / "run"),
                 return_state=True)
    assert state.is_failed()
    assert state.message == f"{tmp_path / 'nope.csv'}: no such file"


def test_tasks_do_not_cache_or_persist():
    flow = load_audit_flow()
    import sys

    module = sys.modules[flow.fn.__module__]
    for name in ("start_run", "ingest", "reference_check", "rules", "outputs"):
        task = getattr(module, name)
        assert task.persist_result is False, name
        assert task.cache_policy is NO_CACHE, name
    assert os.environ.get("PREFECT_TASKS_DEFAULT_NO_CACHE") == "true"
