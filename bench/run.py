"""Benchmark the audit: generate N lines, import the synthetic CMS reference set, run every stage.

    python bench/run.py --lines 1000000                  # CSV in
    python bench/run.py --lines 10000000 --format parquet
    python bench/run.py --lines 1000000 --pandas         # + the pandas baseline on the same data (and whether
                                                         #   it found the same PTP/MUE/time findings)
    python bench/run.py --lines 1000000 --again          # + the same extract audited again into the same
                                                         #   warehouse: a nightly run, compared with the first
    python bench/ratio.py W1 W10                         # two runs' --work folders, stage by stage: does a
                                                         #   stage grow faster than the lines?

Prints one table (seconds, lines per second per stage, each rule file), the audit's peak RSS (its own
process and, separately, the data-quality worker it starts) and, measured in the same run on the same
file, the time of a plain DuckDB read of the extract into a table: the yardstick for "how many reads
is a whole audit". Generation, the reference import, the plain read and the audit each run in their
own process, so each peak RSS is that process's own. Data goes to a temporary folder (or --work) and
is deleted unless --keep or --work. The audit's memory setting is CLAIMAUDIT_MEMORY_LIMIT (default 3GB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child_audit(spec: dict) -> None:
    """The audit in this (child) process; writes its summary timings and peak RSS to spec['result']."""
    from claimaudit import pipeline

    t = time.perf_counter()
    if spec["dask_workers"]:
        from claimaudit.cli import dask_task_runner
        from claimaudit.flow_loader import load_audit_flow

        flow = load_audit_flow().with_options(task_runner=dask_task_runner(spec["dask_workers"], None))
        summary = flow([spec["source"]], db=spec["db"], out=spec["out"],
                       partitions=max(spec["partitions"], spec["dask_workers"]), return_state=True).result()
    else:
        summary = pipeline.run_audit([Path(spec["source"])], db=Path(spec["db"]), out=Path(spec["out"]),
                                     partitions=spec["partitions"])
    wall = time.perf_counter() - t
    Path(spec["result"]).write_text(json.dumps({
        "wall": wall, "timings": summary["timings"], "read": summary["read"], "quarantined": summary["quarantined"],
        "findings": summary["findings"], "history": summary.get("history"),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}), encoding="utf-8")


def _sample_tree_rss(proc: subprocess.Popen) -> float:
    """Wait for ``proc``; the largest sum of its and its descendants' RSS seen (MiB), every 0.1 s. The
    audit and its data-quality worker are separate processes whose peaks need not coincide: this is
    the machine's memory the run needed at once."""
    import psutil

    top = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [top, *top.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_info().rss
        except psutil.NoSuchProcess:
            break
        peak = max(peak, total)
        time.sleep(0.1)
    proc.wait()
    return peak / 2**20


def plain_read(source: Path, work: Path) -> tuple[float, float]:
    """Seconds and peak MiB of DuckDB reading the extract, every column as text, into a table of a
    fresh database file: the cheapest possible load of the same bytes."""
    reader = "read_parquet(?)" if source.suffix == ".parquet" else "read_csv(?, all_varchar = true)"
    db = work / "plain-read.duckdb"
    db.unlink(missing_ok=True)
    code = (f"import duckdb, json, resource, sys, time\ncon = duckdb.connect(sys.argv[2])\ncon.execute('SET enable_progress_bar = false')\nt = time.perf_counter()\n"
            f"con.execute('CREATE TABLE t AS SELECT * FROM {reader}', [sys.argv[1]])\ns = time.perf_counter() - t\n"
            "n = con.execute('SELECT count(*) FROM t').fetchone()[0]\ncon.close()\n"
            "print(json.dumps([s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n]))")
    try:
        out = subprocess.run([sys.executable, "-c", code, str(source), str(db)], check=True, capture_output=True,
                             text=True).stdout
    finally:
        db.unlink(missing_ok=True)
        Path(str(db) + ".wal").unlink(missing_ok=True)
    seconds, peak, _ = json.loads(out.strip().splitlines()[-1])
    return seconds, peak


def _audit_in_child(spec: dict, spec_path: Path, what: str) -> tuple[dict, float]:
    """Run the audit ``spec`` in a child process; its result and the most memory it and its data-quality
    worker held at once (MiB)."""
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)])
    together = _sample_tree_rss(child)
    if child.returncode:
        raise SystemExit(f"{what} failed (exit code {child.returncode})")
    return json.loads(Path(spec["result"]).read_text(encoding="utf-8")), together


def _stage_rows(r: dict) -> list[tuple[str, float, int | None]]:
    """(stage, seconds, lines) of one audit's result."""
    timings, n = r["timings"], r["read"]
    rows = [("ingest", timings["ingest"], n),
            ("data quality step (GX subprocess, all)", timings["data_quality"], n),
            ("  GX suite validation only", timings["data_quality_validate"], n),
            ("  waiting for the worker's GX import", timings.get("data_quality_waited_for_import") or 0.0, None),
            ("reference", timings["reference"], n), ("rules", timings["rules"], n)]
    rows += [(f"  rules: {name}", s, n) for name, s in timings["rule_files"].items()]
    rows.append(("outputs (findings, reports, summary)", timings["outputs"], n))
    rows.append(("audit total (ingest..outputs)", timings["total"], n))
    rows.append(("wall time of run_audit()", r["wall"], n))
    return rows


def _print_rows(rows: list[tuple[str, float, int | None]]) -> None:
    print(f"{'stage':<38}{'seconds':>9}{'lines/s':>14}")
    for name, seconds, lines in rows:
        rate = f"{lines / seconds:,.0f}" if lines and seconds else ""
        print(f"{name:<38}{seconds:>9.2f}{rate:>14}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child_audit(json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--ptp-rows", type=int, default=2_000_000)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--work", type=Path, help="keep data here (reused when it exists)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--pandas", action="store_true", help="also run bench/baseline_pandas.py on the same data")
    parser.add_argument("--partitions", type=int, default=1, help="rules on N patient-hash partitions (threads)")
    parser.add_argument("--again", action="store_true",
                        help="then audit the same extract again into the same warehouse: the nightly case, where "
                             "history compares every finding with the run before")
    parser.add_argument("--dask-workers", type=int, help="partitions on a Dask LocalCluster of N worker processes "
                        "(through the Prefect flow; the workers' memory is not in the figures)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="claimaudit-bench-"))
    data = work / "data"
    source = data / f"claims.{args.format}"
    try:
        if not source.exists():
            subprocess.run([sys.executable, str(HERE / "generate.py"), "--lines", str(args.lines),
                            "--ptp-rows", str(args.ptp_rows), "--out", str(data)], check=True)
        db = work / "bench.duckdb"
        db.unlink(missing_ok=True)
        Path(str(db) + ".wal").unlink(missing_ok=True)
        shutil.rmtree(work / "run", ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "claimaudit", "refdata", "import", str(data / "ccipra-v322r0-f1.txt"),
                        str(data / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"), "--db", str(db),
                        "--parts", "1"], check=True,            # the synthetic release is one part file
                       stdout=subprocess.DEVNULL)
        refdata_s = time.perf_counter() - t
        read_s, read_peak = plain_read(source, work)

        spec = {"source": str(source), "db": str(db), "out": str(work / "run"), "partitions": args.partitions,
                "dask_workers": args.dask_workers, "result": str(work / "bench-result.json")}
        r, together = _audit_in_child(spec, work / "bench-spec.json", "the audit")
        r["plain_read"] = read_s            # for bench/ratio.py, which compares two sizes stage by stage
        Path(spec["result"]).write_text(json.dumps(r), encoding="utf-8")
        timings, n = r["timings"], r["read"]
        rows = [("refdata import (once per quarter)", refdata_s, None),
                ("plain DuckDB read into a table", read_s, n)] + _stage_rows(r)
        print(f"\nclaimaudit benchmark: {n:,} lines ({args.format}), {r['findings']['total']:,} findings, "
              f"{r['quarantined']:,} quarantined; machine: {platform.machine()}, "
              f"{len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
              f"memory setting {os.environ.get('CLAIMAUDIT_MEMORY_LIMIT') or '3GB (default)'}")
        _print_rows(rows)
        print(f"whole audit / plain read: {r['wall'] / read_s:.1f}x")
        print(f"peak RSS: audit process {r['peak_mib']:,.0f} MiB, its data-quality worker {r['children_peak_mib']:,.0f}"
              f" MiB, both together at any one time {together:,.0f} MiB (sampled every 0.1 s), plain read "
              f"{read_peak:,.0f} MiB" + (" (Dask worker processes not included)" if args.dask_workers else ""))
        for part in timings.get("rule_partitions", []):
            print(f"  partition {part['part']}: {part['lines']:,} lines, {part['findings']:,} findings, "
                  f"{part['seconds']:.2f} s")
        sizes = {p.name: p.stat().st_size for p in (work / "run").iterdir() if p.is_file()}
        print("outputs: " + ", ".join(f"{k} {v / 1e6:,.1f} MB" for k, v in sorted(sizes.items())))
        print("findings by rule: " + ", ".join(f"{k} {v:,}" for k, v in r["findings"]["by_rule"].items()))
        if args.pandas:
            from baseline_pandas import same_findings  # bench/, this script's folder

            keys = work / "pandas-keys.parquet"
            out = subprocess.run([sys.executable, str(HERE / "baseline_pandas.py"), "--work", str(work), "--keys",
                                  str(keys)], check=True, capture_output=True, text=True).stdout
            print("\n" + out.rstrip())
            same = same_findings(keys, work / "run" / "findings.parquet")
            keys.unlink()
            pandas_checks = next(float(line.split(" s ")[0].split()[-1]) for line in out.splitlines()
                                 if line.startswith("PTP + MUE + time, checks only"))
            ours = sum(timings["rule_files"].get(f, 0.0) for f in ("ncci_ptp", "mue", "units_time"))
            print(same)
            if not same.startswith("same findings: yes"):   # a ratio of different work is no ratio
                raise SystemExit("the pandas baseline and the audit found different findings (above)")
            print(f"same families: pandas {pandas_checks:.2f} s, claimaudit ncci_ptp + mue + units_time "
                  f"{ours:.2f} s: pandas takes {pandas_checks / ours:.2f}x claimaudit's time")
        if args.again:
            again = {**spec, "out": str(work / "run-again"), "result": str(work / "bench-result-again.json")}
            shutil.rmtree(work / "run-again", ignore_errors=True)
            r2, together = _audit_in_child(again, work / "bench-spec-again.json", "the second audit")
            h = r2["history"] or {}
            print(f"\nthe same extract again, into the same warehouse (a nightly run; history: "
                  f"{h.get('recurring', 0):,} recurring, {h.get('new', 0):,} new, {h.get('resolved', 0):,} resolved, "
                  f"{h.get('not_compared', 0):,} not compared)")
            _print_rows(_stage_rows(r2))
            print(f"whole audit / plain read: {r2['wall'] / read_s:.1f}x; both processes at any one time "
                  f"{together:,.0f} MiB")
            if r2["findings"]["by_rule"] != r["findings"]["by_rule"]:
                raise SystemExit("the second audit of the same extract found different findings")
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
