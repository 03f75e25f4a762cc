"""Benchmark the audit: generate N lines, import the synthetic CMS reference set, run every stage.

    python bench/run.py --lines 1000000            # CSV in
    python bench/run.py --lines 1000000 --format parquet

Prints one table (seconds, lines per second per stage, each rule file) and the audit's peak RSS.
Generation and the reference import run in subprocesses, so the peak RSS is the audit's own.
Data goes to a temporary folder (or --work) and is deleted unless --keep.
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from claimaudit import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--ptp-rows", type=int, default=2_000_000)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--partitions", type=int, default=1, help="rules on N patient-hash partitions (threads)")
    parser.add_argument("--dask-workers", type=int, help="partitions on a Dask LocalCluster of N worker processes "
                        "(through the Prefect flow; peak RSS then excludes the workers, see the note printed)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="claimaudit-bench-"))
    data = work / "data"
    here = Path(__file__).resolve().parent
    try:
        if not (data / "claims.csv").exists():
            subprocess.run([sys.executable, str(here / "generate.py"), "--lines", str(args.lines),
                            "--ptp-rows", str(args.ptp_rows), "--out", str(data)], check=True)
        db = work / "bench.duckdb"
        db.unlink(missing_ok=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "claimaudit", "refdata", "import", str(data / "ccipra-v322r0-f1.txt"),
                        str(data / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"), "--db", str(db),
                        "--parts", "1"], check=True,            # the synthetic release is one part file
                       stdout=subprocess.DEVNULL)
        refdata_s = time.perf_counter() - t

        t = time.perf_counter()
        if args.dask_workers:
            from claimaudit.cli import dask_task_runner
            from claimaudit.flow_loader import load_audit_flow

            flow = load_audit_flow().with_options(task_runner=dask_task_runner(args.dask_workers, None))
            state = flow([str(data / f"claims.{args.format}")], db=str(db), out=str(work / "run"),
                         partitions=max(args.partitions, args.dask_workers), return_state=True)
            summary = state.result()
        else:
            summary = pipeline.run_audit([data / f"claims.{args.format}"], db=db, out=work / "run",
                                         partitions=args.partitions)
        wall_s = time.perf_counter() - t
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        timings, n = summary["timings"], summary["read"]
        rows = [("refdata import (once per quarter)", refdata_s, None)]
        rows += [("ingest", timings["ingest"], n),
                 ("data quality step (GX subprocess, all)", timings["data_quality"], n),
                 ("  GX suite validation only", timings["data_quality_validate"], n),
                 ("reference", timings["reference"], n), ("rules", timings["rules"], n)]
        rows += [(f"  rules: {name}", s, n) for name, s in timings["rule_files"].items()]
        rows.append(("outputs (findings, reports, summary)", timings["outputs"], n))
        rows.append(("audit total (ingest..outputs)", timings["total"], n))
        rows.append(("wall time of run_audit()", wall_s, n))
        print(f"\nclaimaudit benchmark: {n:,} lines ({args.format}), {summary['findings']['total']:,} findings, "
              f"{summary['quarantined']:,} quarantined; machine: {platform.machine()}, "
              f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}")
        print(f"{'stage':<38}{'seconds':>9}{'lines/s':>14}")
        for name, seconds, lines in rows:
            rate = f"{lines / seconds:,.0f}" if lines and seconds else ""
            print(f"{name:<38}{seconds:>9.2f}{rate:>14}")
        print(f"peak RSS of the audit process: {peak_mib:,.0f} MiB"
              + (" (Dask worker processes not included)" if args.dask_workers else ""))
        for part in timings.get("rule_partitions", []):
            print(f"  partition {part['part']}: {part['lines']:,} lines, {part['findings']:,} findings, "
                  f"{part['seconds']:.2f} s")
        sizes = {p.name: p.stat().st_size for p in (work / "run").iterdir() if p.is_file()}
        print("outputs: " + ", ".join(f"{k} {v / 1e6:,.1f} MB" for k, v in sorted(sizes.items())))
        print("findings by rule: " + ", ".join(f"{k} {v:,}" for k, v in summary["findings"]["by_rule"].items()))
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
