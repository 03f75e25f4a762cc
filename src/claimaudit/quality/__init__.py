"""Data quality: the Great Expectations suite in expectations/ run over each run's loaded lines."""

from claimaudit.quality.runner import run_quality

__all__ = ["run_quality"]
