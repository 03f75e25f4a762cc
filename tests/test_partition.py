"""Scale-out: rules on patient-hash partitions (threads, or a Dask LocalCluster through Prefect)
give the single-process findings byte for byte after sorting."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.flow_loader import load_audit_flow

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "claims.csv"


def _sorted_csv(run_folder: Path) -> bytes:
    """findings.parquet without the run id, sorted by every column, as CSV bytes."""
    findings = pl.read_parquet(run_folder / "findings.parquet").drop("run_id")
    findings = findings.with_columns(pl.col("related_lines").list.join(";"))
    buffer = io.BytesIO()
    findings.sort(findings.columns, nulls_last=True).write_csv(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> bytes:
    d = tmp_path_factory.mktemp("single")
    pipeline.run_audit([SAMPLE], db=d / "w.duckdb", out=d / "out")
    return _sorted_csv(d / "out")


@pytest.mark.parametrize("partitions", [2, 5])
def test_partitions_in_threads_match_the_single_process_run(tmp_path, single, partitions):
    summary = pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out", partitions=partitions)
    parts = summary["timings"]["rule_partitions"]
    assert len(parts) == partitions and sum(p["lines"] for p in parts) == summary["loaded"]
    assert _sorted_csv(tmp_path / "out") == single
    assert not (tmp_path / ".claimaudit-work").exists()                  # work files removed


def test_partitions_on_a_dask_local_cluster_match_the_single_process_run(tmp_path, single):
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                            "host": "127.0.0.1", "dashboard_address": None})
    flow = load_audit_flow().with_options(task_runner=runner)
    state = flow([str(SAMPLE)], db=str(tmp_path / "w.duckdb"), out=str(tmp_path / "out"), partitions=2,
                 return_state=True)
    assert state.is_completed(), state.message
    summary = state.result()
    assert len(summary["timings"]["rule_partitions"]) == 2
    assert _sorted_csv(tmp_path / "out") == single
