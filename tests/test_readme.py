"""The README's sample printout is the real output of its first command (scripts/readme_sample.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_sample_output_is_what_the_sample_audit_prints():
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "readme_sample.py"), "--check"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr


def test_readme_quick_start_is_two_commands_and_names_the_test_command_ci_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0].strip() for b in quick.split("```bash\n")[1:]]
    assert blocks == ["pip install -e . && claimaudit audit data/sample/claims.csv", "pip install -e '.[test]' && pytest"]
    assert blocks[1] in (REPO / ".ci" / "run").read_text(encoding="utf-8")
