"""Write the README's sample printout from a real run of its first command, so it cannot drift.

    python scripts/readme_sample.py          # rewrite the block in README.md
    python scripts/readme_sample.py --check  # exit 1 if README.md differs (tests/test_readme.py runs this)

Runs ``claimaudit audit data/sample/claims.csv`` in a fresh folder (a new warehouse, in-process), and
puts its standard output between the README's ``sample-output`` markers, with the run id (a timestamp)
replaced by a fixed one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- sample-output:start -->", "<!-- sample-output:end -->"
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
SHOWN_ID = "20261202T080000Z-5a3c1e"


def sample_output() -> str:
    with tempfile.TemporaryDirectory(prefix="claimaudit-readme-") as work:
        env = {**os.environ, "PREFECT_API_URL": "", "PREFECT_PROFILE": "", "PREFECT_HOME": str(Path(work) / "prefect")}
        proc = subprocess.run([sys.executable, "-m", "claimaudit", "audit", str(REPO / "data/sample/claims.csv")],
                              cwd=work, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"the sample audit failed: {proc.stderr.strip()}")
    return RUN_ID.sub(SHOWN_ID, proc.stdout).rstrip() + "\n"


def main() -> int:
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    fresh = f"{before}{START}\n```\n{sample_output()}```\n{END}{after}"
    if "--check" in sys.argv:
        if fresh != text:
            print("README.md's sample output is out of date: run python scripts/readme_sample.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
