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
