"""Data quality: the Great Expectations suite in expectations/ run over each run's loaded lines.

``run_quality`` is imported on first use, so the worker process (``python -m
claimaudit.quality.gx_worker``) starts without the audit's own modules (DuckDB, Polars, the rules)."""

__all__ = ["run_quality"]


def __getattr__(name: str):
    if name == "run_quality":
        from claimaudit.quality.runner import run_quality

        return run_quality
    raise AttributeError(name)
