"""One writer per warehouse: a run holds ``<warehouse>.lock`` from its first step to its last.

DuckDB lets one process at a time open a file for writing, but an audit opens the warehouse once
per step, so two runs could interleave between steps. The run-level lock prevents that. A second
run fails fast with a clear message (or waits up to ``wait`` seconds). The lock is an OS file lock
(``filelock``), so a run killed with ``kill -9`` releases it; its half-done work is picked up by
the next run (see landing.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from claimaudit.errors import ClaimAuditError


class WarehouseBusy(ClaimAuditError):
    pass


@contextmanager
def warehouse_lock(db: str | Path, *, wait: float = 0) -> Iterator[None]:
    path = Path(f"{Path(db).resolve()}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise WarehouseBusy(f"{db}: another claimaudit run is using this warehouse (lock {path.name}); "
                            "it was not touched. Retry when that run ends, or pass --wait SECONDS") from None
    try:
        yield
    finally:
        lock.release()
