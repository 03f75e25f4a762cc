"""One error hierarchy whose messages a biller can act on.

Every message names the file (and line and field where there is one) and the problem, in one line.
Messages never quote claim field values beyond the identifiers needed to find a row (PHI).
"""


class ClaimAuditError(Exception):
    """Base class: the CLI prints ``str(error)`` on one line and exits non-zero."""


class InputError(ClaimAuditError):
    """A claim extract (or mapping) cannot be read at all."""


class ReferenceDataError(ClaimAuditError):
    """A CMS reference file cannot be recognised or read."""


class ConfigError(ClaimAuditError):
    """A profile, mapping preset or setting is missing or malformed."""


class WarehouseError(ClaimAuditError):
    """The DuckDB warehouse cannot be opened or is inconsistent."""


class RunFailed(ClaimAuditError):
    """A run stopped on a failure of its surroundings (disk full, read-only folder, ...)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (the CLI turns the signal into this): like Ctrl-C, it
    interrupts a running DuckDB query, and the run is marked failed on the way out."""


def scrub(text: str, limit: int = 200) -> str:
    """The first line of a library's error message, without the values it quotes: DuckDB and Polars
    messages can quote a cell ("Could not convert string 'PT20019' ..."), and whatever an error says
    ends up on screens, in logs and in Prefect's database. Cut at a word boundary."""
    import re as _re

    lines = text.strip().splitlines()
    first = _re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", lines[0] if lines else "")
    first = first.split("Original Line:")[0].strip()
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0] + " ..."
    return first


def as_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """Ctrl-C or SIGTERM, however it surfaced (DuckDB turns one into 'Query interrupted', and a clean-up
    step may fail on the aborted transaction after it), else None."""
    from claimaudit import signals

    if signals.terminated():
        return exc if isinstance(exc, Terminated) else Terminated()
    seen = exc
    for _ in range(6):                                  # the exception, or one it was raised while handling
        if seen is None:
            break
        if isinstance(seen, KeyboardInterrupt):
            return seen
        if "interrupted" in str(seen).lower() and (isinstance(seen, RuntimeError)
                                                   or type(seen).__name__ == "InterruptException"):
            return KeyboardInterrupt()
        seen = seen.__context__ or seen.__cause__
    return None


def describe(exc: BaseException) -> str:
    """One line naming the cause, for the run's ``failure`` and the CLI (no claim data: OS and DuckDB
    errors name paths and codes, not values)."""
    import errno as _errno

    interrupt = as_interrupt(exc)
    if isinstance(interrupt, Terminated):
        return "stopped by SIGTERM"
    if interrupt is not None:
        return "interrupted (Ctrl-C)"
    if isinstance(exc, ClaimAuditError):
        return str(exc)
    if isinstance(exc, OSError):
        import re as _re

        name = _re.sub(r"\.partial-\d+$", "", str(exc.filename)) if exc.filename else None
        what = {_errno.ENOSPC: "no space left on the device", _errno.EROFS: "the file system is read-only",
                _errno.EACCES: "permission denied", _errno.EDQUOT: "disk quota exceeded"}.get(
            exc.errno, exc.strerror or type(exc).__name__)
        return f"cannot write {name}: {what}" if name else f"{what} ({type(exc).__name__})"
    text = scrub(str(exc), 300) or type(exc).__name__
    if "No space left on device" in str(exc) or "could not write" in str(exc).lower():
        return f"the warehouse cannot be written: {text}"
    return f"{type(exc).__name__}: {text}"
