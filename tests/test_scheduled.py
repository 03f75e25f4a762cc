"""Scheduled deployments: schedules and parameters, notifications without PHI, and a real Prefect
server serving a deployment that is triggered with ``prefect deployment run``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import typing
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.errors import ClaimAuditError
from claimaudit.flow_loader import load_scheduled
from claimaudit.notify import notify

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "claims.csv"
BIN = Path(sys.executable).parent


def test_deployments_carry_cron_timezone_and_parameters(tmp_path):
    made = load_scheduled().deployments(folder=str(tmp_path), db=str(tmp_path / "w.duckdb"),
                                        refdata_folder=str(tmp_path / "cms"), scope="clinic",
                                        timezone="America/Chicago")
    by_name = {d.name: d for d in made}
    assert set(by_name) == {"nightly", "weekly-full", "quarterly-refdata"}
    assert {d.schedules[0].schedule.timezone for d in made} == {"America/Chicago"}
    assert by_name["nightly"].schedules[0].schedule.cron == "30 2 * * *"
    assert by_name["weekly-full"].parameters["full"] is True
    assert by_name["quarterly-refdata"].parameters["refdata_folder"] == str(tmp_path / "cms")
    assert by_name["nightly"].parameters["scope"] == "clinic"
    only = load_scheduled().deployments(folder=str(tmp_path), db="w.duckdb", only=["nightly"])
    assert [d.name for d in only] == ["nightly"]
    with pytest.raises(ClaimAuditError, match="quarterly-refdata needs --refdata-folder"):
        load_scheduled().deployments(folder=str(tmp_path), db="w.duckdb", only=["quarterly-refdata"])


class _Inbox(BaseHTTPRequestHandler):
    received: typing.ClassVar[list[bytes]] = []

    def do_POST(self):
        _Inbox.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_notification_carries_headline_numbers_and_no_claim_data(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Inbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        summary = pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
        assert notify(f"json://127.0.0.1:{server.server_port}/", summary)
    finally:
        server.shutdown()
    message = json.loads(_Inbox.received[-1])
    text = message["title"] + "\n" + message["message"]
    assert f"{summary['findings']['total']} findings" in text and "$829.32 at risk" in text
    assert f"{tmp_path / 'out'}/report.html" in text
    lines = pl.read_csv(SAMPLE, infer_schema=False)
    identifiers = set(lines["claim_id"]) | set(lines["patient_id"].drop_nulls()) | set(lines["rendering_npi"])
    assert not [v for v in identifiers if v and v in text]               # no PHI, not even identifiers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_served_deployment_runs_on_a_real_prefect_server(tmp_path):
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    land, out_root = tmp_path / "landing", tmp_path / "runs"
    land.mkdir()
    shutil.copy(SAMPLE, land / "extract.csv")
    (land / "extract.csv.done").write_text("")          # the export says it is complete: no settle wait
    logs = open(tmp_path / "server.log", "w")                               # noqa: SIM115
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=logs, stderr=subprocess.STDOUT)
    served = None
    try:
        _wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).status == 200,
                    120, "the Prefect server")
        served = subprocess.Popen([sys.executable, "-c", "from claimaudit.cli import main; main()", "serve",
                                   "--landing", str(land), "--db", str(tmp_path / "w.duckdb"), "--out-root",
                                   str(out_root), "--scope", "clinic", "--only", "nightly", "--no-data-quality"],
                                  env=env, stdout=logs, stderr=subprocess.STDOUT)
        _wait_until(lambda: subprocess.run([str(BIN / "prefect"), "deployment", "inspect",
                                            "claimaudit-landing/nightly"], env=env, capture_output=True,
                                           timeout=60).returncode == 0, 120, "the served deployment")
        run = subprocess.run([str(BIN / "prefect"), "deployment", "run", "claimaudit-landing/nightly", "--watch",
                              "--watch-timeout", "300"], env=env, capture_output=True, text=True, timeout=360)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Completed" in run.stdout + run.stderr
        folders = [p for p in out_root.iterdir() if p.is_dir()]
        assert len(folders) == 1
        summary = json.loads((folders[0] / "summary.json").read_text())
        assert summary["landing"]["files_new"] == [str(land / "extract.csv")]
        assert summary["read"] == 669 and summary["reconciled"]
        assert (folders[0] / "report.html").exists()
    finally:
        for proc in (served, server):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        logs.close()
