"""Scale settings and what a long run shows: one memory setting for every DuckDB connection, the CLI's
Prefect-or-not default, per-stage progress lines (counts and seconds, never claim data)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from claimaudit import pipeline, progress, warehouse
from claimaudit.errors import WarehouseError
from claimaudit.flow_loader import prefect_api_configured
from conftest import SAMPLE


def _cli(*args, env=None, cwd):
    return subprocess.run([sys.executable, "-m", "claimaudit", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_the_memory_setting_reaches_the_warehouse_and_the_quality_worker(tmp_path, monkeypatch):
    from claimaudit.quality import runner

    monkeypatch.setenv("CLAIMAUDIT_MEMORY_LIMIT", "700MB")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        limit, spill = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')"
                                   ).fetchone()
    assert limit == "667.5 MiB"                                   # DuckDB shows 700 MB in MiB
    assert Path(spill).parent == tmp_path / ".claimaudit-work"    # spill files stay beside the warehouse
    seen = []
    real = runner._hand_over

    def spy(proc, args_path):
        seen.append(json.loads(Path(args_path).read_text()))
        return real(proc, args_path)

    monkeypatch.setattr(runner, "_hand_over", spy)
    pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out")
    (args,) = seen
    assert args["memory_limit"] == "700MB" and Path(args["spill"]).parent == Path(args["out"]).parent


@pytest.mark.parametrize("value", ["3", "lots", "1GB; SELECT 1", "0GB", "-1GB"])
def test_a_bad_memory_setting_is_refused_before_anything_is_created(tmp_path, monkeypatch, value):
    monkeypatch.setenv("CLAIMAUDIT_MEMORY_LIMIT", value)
    with pytest.raises(WarehouseError, match="CLAIMAUDIT_MEMORY_LIMIT"):
        warehouse.memory_limit()
    proc = _cli("audit", SAMPLE, "--db", tmp_path / "w.duckdb", env={"CLAIMAUDIT_MEMORY_LIMIT": value}, cwd=tmp_path)
    assert proc.returncode == 2 and "CLAIMAUDIT_MEMORY_LIMIT" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value, expected", [("3GB", "3GB"), ("1.5gib", "1.5GiB"), (" 800 mb ", "800MB"),
                                             ("", warehouse.DEFAULT_MEMORY_LIMIT)])
def test_memory_setting_grammar(monkeypatch, value, expected):
    monkeypatch.setenv("CLAIMAUDIT_MEMORY_LIMIT", value)
    assert warehouse.memory_limit() == expected


def test_prefect_api_is_read_from_the_environment_or_the_active_profile(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert prefect_api_configured() is None                                   # no profiles file
    (tmp_path / "profiles.toml").write_text('active = "work"\n[profiles.work]\n'
                                            'PREFECT_API_URL = "http://prefect.internal:4200/api"\n'
                                            '[profiles.local]\nPREFECT_LOGGING_LEVEL = "INFO"\n')
    assert prefect_api_configured() == "http://prefect.internal:4200/api"
    monkeypatch.setenv("PREFECT_PROFILE", "local")
    assert prefect_api_configured() is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    assert prefect_api_configured() == "http://127.0.0.1:4200/api"
    (tmp_path / "profiles.toml").write_text("not toml [")
    monkeypatch.delenv("PREFECT_API_URL")
    assert prefect_api_configured() is None


def test_without_a_prefect_api_the_cli_audits_in_process_and_starts_no_server(tmp_path):
    home = tmp_path / "prefect-home"
    env = {"PREFECT_HOME": str(home), "PREFECT_API_URL": "", "PREFECT_PROFILE": ""}
    proc = _cli("audit", SAMPLE, "--no-data-quality", "--db", tmp_path / "w.duckdb", "--out", tmp_path / "run",
                env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "read 669 = loaded 665 + quarantined 4" in proc.stdout     # (the DQ suite quarantines one more)
    assert not (home / "prefect.db").exists()             # no temporary Prefect server, no Prefect database
    assert ": started" not in proc.stderr                  # not a terminal: no progress lines


_PROBE = """
import os
import sys
from claimaudit.quality import runner

real, started, pids = runner._start_worker, [], []


def spy():
    started.append(sorted(m for m in ("duckdb", "polars", "claimaudit.pipeline") if m in sys.modules))
    proc = real()
    pids.append(proc.pid)
    return proc


runner._start_worker = spy
from claimaudit import cli

sys.argv = ["claimaudit", "audit", *sys.argv[1:]]
try:
    cli.main()
finally:
    print("worker started with these imported:", started)
    print("workers still running as the command returns:", [p for p in pids if os.path.exists(f"/proc/{p}")])
"""


def test_the_audit_command_starts_the_quality_worker_before_it_imports_the_engine(tmp_path):
    """Great Expectations' import (3-6 s here) is a small run's critical path, so the audit command starts
    the worker first, before DuckDB, Polars and the pipeline are imported, and the run uses that worker
    (one worker in all). A missing input starts none; a bad setting found after the start stops it again:
    nothing is left running or created."""
    env = {**os.environ, "PREFECT_API_URL": "", "PREFECT_HOME": str(tmp_path / "prefect-home")}
    run = subprocess.run([sys.executable, "-c", _PROBE, str(SAMPLE), "--db", str(tmp_path / "w.duckdb"), "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert "worker started with these imported: [[]]" in run.stdout
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["data_quality"]["expectations"] > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = subprocess.run([sys.executable, "-c", _PROBE, str(empty / "nope.csv"), "--db", str(empty / "x.duckdb")],
                         capture_output=True, text=True, timeout=60, env=env, cwd=empty)
    assert bad.returncode == 2 and "nope.csv" in bad.stderr
    assert "worker started with these imported: []" in bad.stdout        # a missing file: no worker at all
    assert list(empty.iterdir()) == []                                    # no warehouse, no run folder
    bad_setting = subprocess.run([sys.executable, "-c", _PROBE, str(SAMPLE), "--db", str(empty / "x.duckdb")],
                                 capture_output=True, text=True, timeout=60, cwd=empty,
                                 env={**env, "CLAIMAUDIT_MEMORY_LIMIT": "lots"})
    assert bad_setting.returncode == 2 and "CLAIMAUDIT_MEMORY_LIMIT" in bad_setting.stderr
    assert "worker started with these imported: [[]]" in bad_setting.stdout
    assert "workers still running as the command returns: []" in bad_setting.stdout    # stopped, not left behind
    assert list(empty.iterdir()) == []


def test_progress_lines_name_each_stage_with_counts_and_no_claim_data(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    with progress.to_terminal(console):
        pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    text = out.getvalue()
    for expected in ("ingest: started", "ingest: claims.csv read (669 records, 1 of 1 files)",
                     "ingest: done in", "669 lines read, 665 loaded, 4 quarantined", "reference check: done in",
                     "rules: ncci_ptp.sql done in", "rules: done in", "outputs: done in"):
        assert expected in text, (expected, text)
    assert "PT2" not in text and "CLM0" not in text           # patient and claim ids never appear
    quiet = io.StringIO()
    with progress.to_terminal(Console(file=quiet, force_terminal=False)):
        pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out2", data_quality=False)
    assert quiet.getvalue() == ""
