"""Scale-out: run the rules on partitions of a run's lines, in parallel, and merge the findings.

Every rule's grain lies inside one patient (a day is patient + rendering NPI + DOS; PTP pairs, MUE
sums, the time rules and duplicates never cross patients), so lines partitioned by a hash of
``patient_id`` can be audited independently and the union of the partitions' findings equals the
single-process findings exactly (tests/test_partition.py).

1. ``export`` (in the process that owns the warehouse): the run's lines and data-quality hits are
   written as Parquet, hive-partitioned by ``hash(patient_id) % n``, with the reference tables next
   to them. Ingest, data quality and the reference check have already run on the whole run.
2. ``audit_partition`` (anywhere: a thread, a Dask worker): builds a private DuckDB file from one
   partition and the reference tables, runs the same rule SQL, writes its findings as Parquet.
   It needs only the work folder (a shared filesystem when the Dask cluster spans machines).
3. ``merge`` (back in the warehouse process): loads every partition's findings into ``findings``.

Paths are bound as query parameters (a warehouse folder may hold any character). Claim data moves
as files in the work folder, never through Dask's or Prefect's messages: tasks
receive and return paths and counts only. The work folder is deleted after the merge.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from claimaudit.rules.runner import run_rules
from claimaudit.warehouse import connect

REFERENCE_TABLES = ("ref_files", "ref_ptp", "ref_mue", "ref_therapy_codes", "ref_thresholds")


def export(db: str | Path, run_id: str, work: str | Path, partitions: int) -> list[int]:
    """Write the run's lines, DQ hits and the reference tables under ``work``; returns the non-empty partitions."""
    work = Path(work)                           # a fresh private folder (workdir.private_dir)
    (work / "reference").mkdir(parents=True, exist_ok=True)
    with connect(db, read_only=True) as con:
        for table in REFERENCE_TABLES:
            con.execute(f"COPY (SELECT * FROM {table}) TO ? (FORMAT parquet)",   # table: a closed list
                        [str(work / "reference" / f"{table}.parquet")])
        for table in ("dq_results", "therapy_ytd"):                                  # this run's rows
            con.execute(f"COPY (SELECT * FROM {table} WHERE run_id = ?) TO ? (FORMAT parquet)",
                        [run_id, str(work / "reference" / f"{table}.parquet")])
        con.execute(f"""COPY (SELECT *, hash(patient_id) % {int(partitions)} AS part FROM claim_lines WHERE run_id = ?)
                        TO ? (FORMAT parquet, PARTITION_BY (part))""", [run_id, str(work / "lines")])
        con.execute(f"""COPY (SELECT h.*, hash(l.patient_id) % {int(partitions)} AS part FROM dq_hits h
                              JOIN claim_lines l ON l.run_id = h.run_id AND l.claim_id = h.claim_id
                                                AND l.line_number = h.line_number
                              WHERE h.run_id = ?)
                        TO ? (FORMAT parquet, PARTITION_BY (part))""", [run_id, str(work / "dq_hits")])
    return sorted(int(p.name.split("=")[1]) for p in (work / "lines").glob("part=*"))


def audit_partition(work: str, part: int, run_id: str) -> dict:
    """Run every rule file on one partition; returns counts and timings (no claim data)."""
    started = time.perf_counter()
    work_dir = Path(work)
    db = work_dir / f"partition-{part}.duckdb"
    db.unlink(missing_ok=True)
    with connect(db) as con:
        for table in REFERENCE_TABLES:
            con.execute(f"INSERT INTO {table} SELECT * FROM read_parquet(?)",        # table: a closed list
                        [str(work_dir / "reference" / f"{table}.parquet")])
        for table in ("dq_results", "therapy_ytd"):
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)",
                        [str(work_dir / "reference" / f"{table}.parquet")])
        con.execute("INSERT INTO claim_lines BY NAME SELECT * FROM read_parquet(?, hive_partitioning = false)",
                    [str(work_dir / "lines" / f"part={int(part)}" / "*.parquet")])
        hits = work_dir / "dq_hits" / f"part={int(part)}"
        if hits.exists():
            con.execute("INSERT INTO dq_hits BY NAME SELECT * FROM read_parquet(?, hive_partitioning = false)",
                        [str(hits / "*.parquet")])
        timings = run_rules(con, run_id)
        con.execute("COPY (SELECT * FROM findings WHERE run_id = ?) TO ? (FORMAT parquet)",
                    [run_id, str(work_dir / f"findings-{int(part)}.parquet")])
        con.execute("COPY (SELECT * FROM unchecked_lines WHERE run_id = ?) TO ? (FORMAT parquet)",
                    [run_id, str(work_dir / f"unchecked-{int(part)}.parquet")])
        lines, findings = con.execute("SELECT (SELECT count(*) FROM claim_lines), (SELECT count(*) FROM findings)"
                                      ).fetchall()[0]
    db.unlink(missing_ok=True)
    return {"part": part, "lines": lines, "findings": findings, "timings": timings,
            "seconds": round(time.perf_counter() - started, 3)}


def merge(con: duckdb.DuckDBPyConnection, run_id: str, work: str | Path) -> int:
    """Replace the run's findings (and unchecked lines) with the union of the partitions' ones."""
    con.execute("DELETE FROM findings WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM unchecked_lines WHERE run_id = ?", [run_id])
    unchecked = sorted(Path(work).glob("unchecked-*.parquet"))
    if unchecked:
        con.execute("INSERT INTO unchecked_lines BY NAME SELECT * FROM read_parquet(?)", [[str(f) for f in unchecked]])
    files = sorted(Path(work).glob("findings-*.parquet"))
    if not files:
        return 0
    return len(con.execute("INSERT INTO findings BY NAME SELECT * FROM read_parquet(?) RETURNING 1",
                           [[str(f) for f in files]]).fetchall())
