"""Load the Prefect flow from flows/audit_flow.py (its deployable entrypoint) for the CLI."""

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


def load_audit_flow():
    for key, value in _PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    name = "claimaudit_flows_audit"
    if name in sys.modules:
        return sys.modules[name].audit_flow
    path = resource("flows", "audit_flow.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.audit_flow
