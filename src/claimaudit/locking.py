"""One writer per warehouse: a run holds ``<warehouse>.lock`` from its first step to its last.

DuckDB lets one process at a time open a file for writing, but an audit opens the warehouse once
per step, so two runs could interleave between steps. The run-level lock prevents that. A second
run fails fast with a clear message (or waits up to ``wait`` seconds). The lock is an OS file lock
(``filelock``), so a run killed with ``kill -9`` releases it; its half-done work is picked up by
the next run (runs.recover).
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
def warehouse_lock(db: str | Path, *, wait: float = 0, recover: bool = True) -> Iterator[list[str]]:
    """Hold the warehouse for one run. Holding it proves no other run is alive, so runs left
    ``running`` are dead: they are marked abandoned and cleaned up first (runs.recover); the context
    yields their ids."""
    path = Path(f"{Path(db).resolve()}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=wait)
    try:
        lock.acquire()
    except Timeout:
        raise WarehouseBusy(f"{db}: another claimaudit run is using this warehouse (lock {path.name}); "
                            "it was not touched. Retry when that run ends, or pass --wait SECONDS") from None
    try:
        from claimaudit.runs import recover as _recover

        yield _recover(db) if recover else []
    finally:
        lock.release()
