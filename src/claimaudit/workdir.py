"""The warehouse's private work folder: every temporary file claimaudit writes lives here.

``<warehouse folder>/.claimaudit-work/`` (mode 0700) holds DuckDB spill files, the data-quality
worker's files and the rules' partitions, each in a folder named ``<kind>-<pid>-...`` of the process
that made it. Claim data therefore never lands in the shared ``/tmp`` (PHI stays where the user put
the warehouse), every folder is removed when its process is done with it, and folders whose
process is gone (a killed run) are removed by the next run that holds the warehouse lock
(:func:`sweep`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

WORK = ".claimaudit-work"


def root(db: str | Path) -> Path:
    return Path(db).resolve().parent / WORK


def _make_root(db: str | Path) -> Path | None:
    path = root(db)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError:
        return None                         # a read-only place: the caller falls back
    return path


@contextlib.contextmanager
def private_dir(db: str | Path, kind: str, *, fallback_to_tmp: bool = False) -> Iterator[Path]:
    """A fresh 0700 folder for this process, removed on every way out of the block."""
    for _ in range(3):                      # another process may remove the (empty) root meanwhile
        base = _make_root(db)
        if base is None and not fallback_to_tmp:
            raise OSError(f"cannot create the work folder {root(db)}")
        try:
            path = Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=base))
            break
        except FileNotFoundError:
            continue
    else:
        raise OSError(f"cannot create a folder in {root(db)}")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if base is not None:
            with contextlib.suppress(OSError):
                base.rmdir()                # only when empty: nothing is left behind


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(db: str | Path) -> list[str]:
    """Remove the folders of processes that no longer exist (killed runs). Returns their names."""
    base = root(db)
    removed = []
    if not base.is_dir():
        return removed
    for entry in base.iterdir():
        parts = entry.name.split("-")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        if pid is not None and pid != os.getpid() and not _alive(pid):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry.name)
    with contextlib.suppress(OSError):
        base.rmdir()                        # only when empty
    return removed
