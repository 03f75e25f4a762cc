"""Throughput and memory of the 837P reader on a generated file of a given size.

    python bench/x12_837.py --mb 1000 [--mode stream|parquet|materialize] [--work DIR] [--keep]

Writes one interchange of synthetic transaction sets (1,000 claims of 4 service lines each, as the
TR3 recommends at most 5,000 claims per ST), then reads it with claimaudit's 837P reader and prints
MB/s, lines/s and the peak RSS. Modes: ``stream`` (default) consumes ``iter_837`` piece by piece, as a
loader does; ``parquet`` streams the file into Parquet (``claimaudit x12-lines``); ``materialize``
holds every line at once (``read_837``, what ``claimaudit audit`` does). Run one mode per process:
the peak RSS is the process's. The data is generated at run time and deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

CLAIMS_PER_SET = 1000


def _transaction_set(n: int) -> str:
    head = [f"ST*837*{n:09d}*005010X222A1", "BHT*0019*00*0123*20260301*0932*CH",
            "NM1*41*2*SYNTHETIC BILLING*****46*999999999", "PER*IC*BILLING OFFICE*TE*5555550100",
            "NM1*40*2*SYNTHETIC PAYER*****46*111222333", "HL*1**20*1",
            "NM1*85*2*SYNTHETIC THERAPY GROUP*****XX*1234567893", "N3*1 MAIN ST", "N4*ANYTOWN*MD*20705",
            "REF*EI*123456789"]
    body = []
    for c in range(CLAIMS_PER_SET):
        hl = 2 + c
        body += [f"HL*{hl}*1*22*0", "SBR*P*18*******MB", f"NM1*IL*1*PATIENT*SYN****MI*M{n:06d}{c:04d}",
                 "NM1*PR*2*MEDICARE PART B*****PI*12345", f"CLM*S{n:06d}C{c:04d}*400***11:B:1*Y*A*Y*Y",
                 "HI*ABK:M25561*ABF:M6281", "NM1*82*1*THERAPIST*SYN****XX*1234567893"]
        for line, (code, minutes) in enumerate([("97110", 24), ("97140", 23), ("97530", 15), ("97112", 8)], 1):
            body += [f"LX*{line}", f"SV1*HC:{code}:GP*100*UN*{2 if minutes > 22 else 1}***1:2",
                     f"DTP*472*D8*202603{1 + c % 28:02d}"]
    segments = head + body
    return "~\n".join(segments + [f"SE*{len(segments) + 1}*{n:09d}"]) + "~\n"


def generate(path: Path, megabytes: int) -> int:
    isa = ("ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260301*0932*^*00501*"
           "000000001*0*T*:~\nGS*HC*SUBMITTER*RECEIVER*20260301*0932*1*X*005010X222A1~\n")
    written, n = 0, 0
    with path.open("w", encoding="ascii") as fh:
        fh.write(isa)
        while written < megabytes * 1_000_000:
            block = _transaction_set(n)
            fh.write(block)
            written += len(block)
            n += 1
        fh.write(f"GE*{n}*1~\nIEA*1*000000001~\n")
    return n


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1000)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--mode", choices=["stream", "parquet", "materialize"], default="stream")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="claimaudit-x12-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "synthetic.837"
    try:
        t = time.perf_counter()
        sets = generate(path, args.mb)
        print(f"generated {path.stat().st_size / 1e6:,.0f} MB, {sets:,} transaction sets in {time.perf_counter() - t:.1f} s")
        from claimaudit.x12.claims837 import iter_837, read_837, write_837_parquet

        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cpu = _cpu_seconds()
        t = time.perf_counter()
        held = ""
        if args.mode == "stream":
            warnings: list[str] = []
            lines = rejected = 0
            for records, rejects in iter_837(path, warnings=warnings):
                lines, rejected = lines + records.height, rejected + rejects.height
        elif args.mode == "parquet":
            counts = write_837_parquet(path, work / "parquet")
            lines, rejected, warnings = counts["lines"], counts["rejects"], counts["warnings"]
        else:
            records, rejects, warnings = read_837(path)
            lines, rejected = records.height, rejects.height
            held = f"; the lines held are {records.estimated_size() / 2**20:,.0f} MiB"
        seconds = time.perf_counter() - t
        cpu = _cpu_seconds() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = path.stat().st_size / 1e6
        print(f"{args.mode}: read {lines:,} service lines ({rejected} rejected, {len(warnings)} warnings) "
              f"in {seconds:.1f} s: {size / seconds:,.1f} MB/s, {lines / seconds:,.0f} lines/s")
        print(f"peak RSS {peak:,.0f} MiB (before reading {base:,.0f} MiB){held}")
        # wall time varies with the machine's neighbours; CPU time is the steadier figure
        cores = os.cpu_count() or 1
        print(f"CPU {cpu:.1f} s (user + sys): {size / cpu:,.1f} MB per CPU-second, so at most "
              f"{size / cpu * cores:,.0f} MB/s on {cores} cores")
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
