"""Load the Prefect flows from flows/ (their deployable entrypoints) for the CLI."""

from __future__ import annotations

import importlib.util
import os
import sys

from claimaudit.resources import resource

# Quiet, private defaults for Prefect when the user has not chosen otherwise (STACK.md).
_PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_TASKS_DEFAULT_NO_CACHE": "true",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}


def _load(file: str):
    for key, value in _PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    name = "claimaudit_flows_" + file.removesuffix(".py")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resource("flows", file))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    # Dask workers cannot import a module loaded from a file path: ship its code by value when
    # Prefect pickles the flow context for a task on another process (cloudpickle's documented hook).
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def load_audit_flow():
    return _load("audit_flow.py").audit_flow


def load_scheduled():
    """flows/scheduled.py: the landing, weekly and quarterly flows and their deployments."""
    return _load("scheduled.py")


def prefect_api_configured() -> str | None:
    """The Prefect API URL the user configured (``PREFECT_API_URL``, or the active profile of
    ``$PREFECT_HOME/profiles.toml``), read without importing Prefect (~2 s): the CLI's default is a
    Prefect flow run only when there is a Prefect server to record it (docs/scaling.md)."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib
    from pathlib import Path

    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = (profiles.get("profiles", {}).get(active) or {}).get("PREFECT_API_URL")
    return str(url) if url else None
