"""Stage progress: one line when a stage starts and one when it ends, with counts and seconds only.

The pipeline logs to the ``claimaudit.progress`` logger; who listens decides where it goes:

* the CLI prints the lines on stderr when stderr is a terminal (``claimaudit audit``), and stays quiet
  otherwise (cron, CI, pipes);
* a Prefect flow run forwards them to its run log (``forward`` in flows/audit_flow.py), so the Prefect
  UI tells the story of the run.

Never put claim data in a message: file names, counts, rule ids and seconds only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

log = logging.getLogger("claimaudit.progress")
log.propagate = False       # only the listeners below (or a handler you add to this logger) print the lines


@contextlib.contextmanager
def stage(name: str, detail: str = "") -> Iterator[dict]:
    """Log ``name`` starting and then done with its seconds; the caller may put ``done`` (a short
    text of counts) into the yielded dict for the end line."""
    info: dict = {}
    log.info("%s: started%s", name, f" ({detail})" if detail else "")
    started = time.perf_counter()
    yield info
    log.info("%s: done in %.1f s%s", name, time.perf_counter() - started,
             f": {info['done']}" if info.get("done") else "")


def note(message: str, *args) -> None:
    log.info(message, *args)


class _Lines(logging.Handler):
    """Hands each progress line's text to ``emit_line``."""

    def __init__(self, emit_line) -> None:
        super().__init__(logging.INFO)
        self.emit_line = emit_line

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):                 # a progress line never fails a run
            self.emit_line(record.getMessage())


@contextlib.contextmanager
def forward(emit_line) -> Iterator[None]:
    """Send each progress line to ``emit_line(text)`` while the block runs."""
    handler = _Lines(emit_line)
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def to_terminal(console) -> contextlib.AbstractContextManager:
    """Print progress lines on ``console`` (a rich Console on stderr), with the seconds since the start,
    while the block runs, if it is a terminal; otherwise print nothing."""
    if not console.is_terminal:
        return contextlib.nullcontext()
    started = time.perf_counter()
    return forward(lambda text: console.print(f"[dim]{time.perf_counter() - started:7.1f}s[/] {text}",
                                              markup=True, highlight=False))


def staged(name: str, done=None):
    """Decorator: the function is the stage ``name``; ``done(result)`` gives the end line's counts."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with stage(name) as info:
                result = fn(*args, **kwargs)
                if done is not None:
                    with contextlib.suppress(Exception):       # a progress line never fails a run
                        info["done"] = done(result)
            return result
        return run
    return wrap
