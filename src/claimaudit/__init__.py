"""claimaudit: batch audit of professional claim lines before the payer sees them."""

__version__ = "0.1.0"

from claimaudit.errors import ClaimAuditError, InputError, ReferenceDataError

__all__ = ["ClaimAuditError", "InputError", "ReferenceDataError", "__version__", "audit"]


def audit(*args, **kwargs):
    """Run an audit without Prefect; see :func:`claimaudit.pipeline.run_audit`."""
    from claimaudit.pipeline import run_audit

    return run_audit(*args, **kwargs)
