"""CMS NCCI reference data: parsers for the published layouts, and the versioned store."""

from claimaudit.refdata.store import ImportResult, ensure_reference, import_paths, list_reference

__all__ = ["ImportResult", "ensure_reference", "import_paths", "list_reference"]
