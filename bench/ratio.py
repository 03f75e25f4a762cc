"""Compare two benchmark runs of different sizes stage by stage: does any stage grow faster than the lines?

    python bench/run.py --lines 1000000 --work W1
    python bench/run.py --lines 10000000 --work W10
    python bench/ratio.py W1 W10

Reads each folder's bench-result.json (written by bench/run.py) and prints, per stage, the seconds at
both sizes and their ratio next to the ratio of the lines. A stage is marked "grows faster than the
lines" when its ratio is more than 1.2 times the lines' ratio (superlinear); a ratio well below the
lines' is a cost that does not grow with the extract (imports, the workbook's capped sheet). Exits 1
when a stage grows faster than the lines, so a scheduled benchmark can fail on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SLACK = 1.2          # how much faster than the lines a stage may grow before it is called superlinear
MIN_SECONDS = 0.5    # stages shorter than this at the larger size are noise, not growth


def _stages(result: dict) -> dict[str, float]:
    """Seconds by stage, as bench/run.py prints them, and the plain read of the same extract."""
    from run import _stage_rows  # bench/, this script's folder

    stages = {name: seconds for name, seconds, _ in _stage_rows(result)}
    if result.get("plain_read"):
        stages["plain DuckDB read (yardstick)"] = result["plain_read"]
    return stages


def compare(small: dict, large: dict) -> tuple[float, list[tuple[str, float, float, float | None, bool]]]:
    """The lines' ratio, and per stage (name, seconds small, seconds large, ratio, grows faster than the lines)."""
    lines = large["read"] / small["read"]
    a, b = _stages(small), _stages(large)
    rows = []
    for name in [n for n in b if n in a]:
        ratio = b[name] / a[name] if a[name] > 0 else None
        superlinear = ratio is not None and b[name] >= MIN_SECONDS and ratio > SLACK * lines
        rows.append((name, a[name], b[name], ratio, superlinear))
    return lines, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("small", type=Path, help="--work folder of the smaller run")
    parser.add_argument("large", type=Path, help="--work folder of the larger run")
    args = parser.parse_args()
    small, large = (json.loads((w / "bench-result.json").read_text(encoding="utf-8")) for w in (args.small, args.large))
    lines, rows = compare(small, large)
    print(f"{small['read']:,} -> {large['read']:,} lines: x{lines:.1f}")
    print(f"{'stage':<40}{'small s':>10}{'large s':>10}{'ratio':>8}")
    for name, a, b, ratio, superlinear in rows:
        shown = f"{ratio:.1f}" if ratio is not None else "-"
        print(f"{name:<40}{a:>10.2f}{b:>10.2f}{shown:>8}" + ("  grows faster than the lines" if superlinear else ""))
    if any(r[4] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
