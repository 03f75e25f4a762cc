"""SIGTERM that stops a run as cleanly as Ctrl-C does, even in the middle of a DuckDB query.

DuckDB's Python client interrupts a running query only for SIGINT (it polls Python's SIGINT flag);
a Python-level SIGTERM handler would wait until the query ends (measured: 19 s into a 20 s query).
So :func:`install` (the CLI calls it) lets the kernel wake a watcher thread through the signal
wakeup file descriptor; the watcher records that SIGTERM arrived and sends SIGINT to the process,
which interrupts the query at once. The run then fails as an interrupt does (pipeline.failing_run),
and :func:`terminated` tells the two apart for the one-line message and the exit code (143).
"""

from __future__ import annotations

import os
import signal
import threading

_terminated = threading.Event()


def terminated() -> bool:
    return _terminated.is_set()


def _stop() -> None:
    if not _terminated.is_set():
        _terminated.set()
        os.kill(os.getpid(), signal.SIGINT)


def _watch(fd: int) -> None:
    while True:
        try:
            data = os.read(fd, 64)
        except OSError:
            return
        if not data:
            return
        if signal.SIGTERM in data:
            _stop()


def install() -> None:
    """From the main thread, before any work starts."""
    if threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, lambda signum, frame: _stop())    # also when something else owns the fd
    threading.Thread(target=_watch, args=(read_fd,), name="claimaudit-sigterm", daemon=True).start()
