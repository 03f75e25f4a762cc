"""The audit, as plain steps: start -> ingest -> reference check -> rules -> outputs.

Each step takes the warehouse path and the run id (never data frames), opens its own connection
and returns a small dict of counts, so the Prefect flow in flows/audit_flow.py can run the same
steps as tasks without claim data passing through Prefect. ``run_audit`` chains them without Prefect.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from claimaudit import __version__, progress, spreadsheet, workdir
from claimaudit.defaults import DEFAULT_PROFILE
from claimaudit.errors import ClaimAuditError, InputError
from claimaudit.ingest.mapping import load_mapping
from claimaudit.ingest.readers import sha256_file
from claimaudit.refdata.store import ensure_reference
from claimaudit.rules import catalogue
from claimaudit.rules.profiles import load_profiles
from claimaudit.rules.runner import prepare, run_rules
from claimaudit.warehouse import connect, memory_limit, one

DEFAULT_OUT = Path("audit-out")


def code_version() -> str:
    """Package version plus the git commit when run from a checkout (recorded with every run)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
                               capture_output=True, text=True, timeout=5)
        if sha.returncode == 0:
            return f"{__version__}+g{sha.stdout.strip()}{'.dirty' if dirty.stdout.strip() else ''}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def start_run(db: str | Path, *, profile: str = DEFAULT_PROFILE, mapping: str | None = None,
              out: str | Path | None = None, run_id: str | None = None, scope: str | None = None,
              skipped: list[str] | None = None) -> dict:
    profiles = load_profiles()
    if profile not in profiles:
        raise ClaimAuditError(f"unknown profile {profile!r}; profiles: {', '.join(sorted(profiles))}")
    load_mapping(mapping)                                   # fail before reading any data
    run_id = run_id or new_run_id()
    out_dir = Path(out) if out else DEFAULT_OUT / run_id
    out_dir.mkdir(parents=True, exist_ok=True)          # a read-only or full --out fails before the run exists
    with connect(db) as con:
        con.execute("INSERT INTO runs (run_id, started_at, status, profile_default, mapping, code_version, out_dir, "
                    "scope_key, families_skipped) VALUES (?, now(), 'running', ?, ?, ?, ?, ?, ?)",
                    [run_id, profile, mapping or "canonical", code_version(), str(out_dir),
                     f"label:{scope}" if scope else None, json.dumps(sorted(skipped or []))])
    return {"run_id": run_id, "out_dir": str(out_dir)}


def _load_remits(con, run_id: str, remits: list[str | Path]) -> None:
    """835 remittances: their own tables, not claim lines; each is listed among the run's inputs."""
    from claimaudit import denials

    for table in ("remit_claims", "remit_lines", "remit_adjustments", "remit_remarks", "remit_plb"):
        con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    for path in remits:
        got = denials.load(con, run_id, Path(path), str(path))
        note = (f"835 remittance: {got['claims']} claims, {got['lines']} service lines, {got['adjustments']} "
                f"adjustments (not claim lines)" + (f"; {got['lines_without_code']} service line(s) without a "
                                                    "procedure code, kept and never matched on code"
                                                    if got["lines_without_code"] else ""))
        con.execute("INSERT INTO run_inputs (run_id, source_file, path, sha256, bytes, file_format, rows_read, "
                    "rows_loaded, rows_quarantined, warnings) VALUES (?, ?, ?, ?, ?, 'x12-835', 0, 0, 0, ?)",
                    [run_id, str(path), str(Path(path).resolve()), sha256_file(Path(path)),
                     Path(path).stat().st_size, json.dumps([*got["warnings"], note])])


@progress.staged("ingest", lambda r: f"{r['read']:,} lines read, {r['loaded']:,} loaded, "
                                     f"{r['quarantined']:,} quarantined")
def ingest(db: str | Path, run_id: str, inputs: list[str | Path], *, mapping: str | None = None,
           profile: str = DEFAULT_PROFILE, out_dir: str | Path, keys_per_file: bool = False,
           remits_alone: bool = False, allow_unmapped: bool = False) -> dict:
    """Read every input, load good lines into claim_lines, quarantine the rest; read = loaded + quarantined.

    Everything happens in DuckDB, in one transaction (ingest/load.py). ``remits_alone``: 835
    remittances may come without claims (a landing run: they pay claims the ledger already holds).
    ``allow_unmapped``: audit even when a column nothing loads holds data (the summary lists it)."""
    if not inputs:
        raise InputError("no input files given")
    from claimaudit.ingest.load import load_inputs
    from claimaudit.ingest.readers import is_remittance

    remits = [p for p in inputs if is_remittance(Path(p))]
    inputs = [p for p in inputs if p not in remits]
    if not inputs and remits_alone:
        with connect(db) as con:
            con.execute("BEGIN")
            con.execute("DELETE FROM run_inputs WHERE run_id = ?", [run_id])
            _load_remits(con, run_id, remits)
            con.execute("COMMIT")
        return no_new_lines(db, run_id, out_dir)
    if not inputs:
        raise InputError("only 835 remittances given: add the claims they pay (837P files or extracts) "
                         "to link denials to findings")
    spec = load_mapping(mapping)
    with connect(db) as con:
        con.execute("BEGIN")
        try:
            loaded = load_inputs(con, run_id, inputs, spec, canonical=load_mapping(None), default_profile=profile,
                                 known_profiles=set(load_profiles()), keys_per_file=keys_per_file,
                                 allow_unmapped=allow_unmapped)
            _load_remits(con, run_id, remits)
            con.execute("UPDATE runs SET rows_read = ?, rows_loaded = ?, rows_quarantined = ?, columns_not_loaded = ?, "
                        "profile_sources = ? WHERE run_id = ?",
                        [loaded.read, loaded.loaded, loaded.quarantined, json.dumps(loaded.columns_not_loaded),
                         json.dumps(loaded.profile_sources), run_id])
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):        # never hide the failure that got us here
                con.execute("ROLLBACK")
            raise
        _write_quarantine(con, run_id, Path(out_dir) / "quarantine.csv")   # rewritten by write_outputs
    return {"read": loaded.read, "loaded": loaded.loaded, "quarantined": loaded.quarantined, "files": loaded.files}


def therapy_ytd(db: str | Path, run_id: str, path: str | Path) -> dict:
    """Record the beneficiaries' prior year-to-date therapy amounts for the KX check (--therapy-ytd)."""
    from claimaudit.ingest.load import load_therapy_ytd

    with connect(db) as con:
        con.execute("BEGIN")
        try:
            got = load_therapy_ytd(con, run_id, path)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
    return got


@progress.staged("reference check", lambda r: ", ".join(f"{v['kind']} {v['version']}" for v in r["versions"]))
def check_reference(db: str | Path, run_id: str) -> dict:
    """Make sure reference data exists (starter set otherwise); record the versions this run uses."""
    with connect(db) as con:
        ensure_reference(con)
        prepare(con, run_id)
        versions = con.sql("""
            SELECT v.kind, v.version, v.is_starter, v.parts, v.coverage_start, v.coverage_end,
                   count(l.claim_id) AS lines
            FROM ref_versions v
            LEFT JOIN dos_versions d ON (v.kind = 'ptp' AND d.ptp_version = v.version)
                                     OR (v.kind = 'mue' AND d.mue_version = v.version)
            LEFT JOIN audit_lines l USING (date_of_service)
            GROUP BY ALL ORDER BY v.kind, v.coverage_start""").pl()
        unchecked = one(con, """
            SELECT count(*) FILTER (WHERE d.ptp_version IS NULL), count(*) FILTER (WHERE d.mue_version IS NULL)
            FROM audit_lines l JOIN dos_versions d USING (date_of_service)""")
        used = [{**r, "coverage_start": str(r["coverage_start"]) if r["coverage_start"] else None,
                 "coverage_end": str(r["coverage_end"]) if r["coverage_end"] else None}
                for r in versions.to_dicts() if r["kind"] in ("ptp", "mue")]
        starter = any(v["is_starter"] and v["lines"] for v in used)
        # the therapy code list and the KX thresholds the rules used (prepare() built both tables)
        therapy = one(con, "SELECT max(version) FROM ref_files WHERE kind = 'therapy' AND replaced_by IS NULL")[0]
        used.append({"kind": "therapy", "version": therapy or "starter-code-classes", "is_starter": therapy is None,
                     "lines": None,
                     "note": "CMS annual therapy code list" if therapy else
                             "STARTER always-therapy flags (data/reference/code_classes.csv): import the CMS "
                             "annual therapy code list with claimaudit refdata import"})
        years = one(con, "SELECT min(year), max(year), list(DISTINCT source ORDER BY source) FILTER "
                         "(WHERE source NOT LIKE 'billing-rules.md%') FROM therapy_thresholds")
        used.append({"kind": "thresholds", "version": f"{years[0]}-{years[1]}" if years[0] else "none",
                     "is_starter": False, "lines": None, "note": "KX/TMR thresholds: data/reference/therapy_thresholds.csv"
                     + (f" and imported {', '.join(years[2])}" if years[2] else "")})
        con.execute("UPDATE runs SET reference_versions = ?, starter_reference = ? WHERE run_id = ?",
                    [json.dumps(used), starter, run_id])
    return {"versions": used, "starter_reference": starter,
            "unchecked_lines": {"ptp": unchecked[0], "mue": unchecked[1]}}


@progress.staged("data quality", lambda r: f"{r['expectations']} expectations, {len(r['failed'])} failed, "
                                          f"{r['rows_quarantined']:,} lines quarantined")
def check_quality(db: str | Path, run_id: str, out_dir: str | Path) -> dict:
    """Run the Great Expectations suite; blocking failures are quarantined, warnings become DQ findings.

    This process only waits for the worker meanwhile, so a thread readies the report's chart engine."""
    from claimaudit.quality import run_quality

    warming = threading.Thread(target=_warm_reports, name="claimaudit-warm-reports", daemon=True)
    warming.start()
    return run_quality(db, run_id, out_dir)


def quality_timings(quality: dict) -> dict:
    """The data-quality step's own figures for a run's timings: its validation, and how long it waited
    for the worker's Great Expectations import (the in-process run and the Prefect flow both record them)."""
    return {"data_quality_validate": quality["seconds"]["validate"],
            "data_quality_waited_for_import": quality["seconds"].get("waited_for_import")}


def _warm_reports() -> None:
    with contextlib.suppress(Exception):     # an optimisation only: the outputs stage reports any real failure
        from claimaudit.report import charts

        charts.warm()


def partial_path(path: Path) -> Path:
    """The temporary name :func:`atomic` writes ``path`` under."""
    return path.with_name(f"{path.name}.partial-{os.getpid()}")


@contextlib.contextmanager
def atomic(path: Path):
    """Write ``path`` through a temporary name, renamed into place when complete: a run killed while
    writing never leaves a half file under the real name (runs.cleanup removes the temporary one)."""
    partial = partial_path(path)
    try:
        yield partial
        os.replace(partial, path)
    except OSError as exc:          # name the output (writers such as Polars' say only "os error 28")
        if exc.filename:
            raise
        code = exc.errno or int((re.search(r"os error (\d+)", str(exc)) or [None, 0])[1]) or None
        raise OSError(code, os.strerror(code) if code else str(exc), str(path)) from exc
    finally:
        partial.unlink(missing_ok=True)


def quarantine_frame(con, run_id: str, limit: int | None = None) -> pl.DataFrame:
    """The run's quarantined rows: the original fields of each row (as read), then reason, source_file,
    source_line; in file and line order (the first ``limit`` rows when given)."""
    q = con.sql("SELECT source_file, source_line, reason, record FROM quarantine WHERE run_id = ? "
                "ORDER BY source_file, source_line" + (" LIMIT ?" if limit is not None else ""),
                params=[run_id] + ([limit] if limit is not None else [])).pl()
    meta = ["reason", "source_file", "source_line"]
    if q.height and q["record"].drop_nulls().len():
        ndjson = "\n".join(q["record"].fill_null("{}").to_list())
        fields = pl.read_ndjson(io.StringIO(ndjson), infer_schema_length=None)
        fields = fields.select([pl.col(c).cast(pl.String) if not isinstance(t, (pl.List, pl.Struct))
                                else pl.col(c).cast(pl.List(pl.String)).list.join(" ") for c, t in fields.schema.items()])
        return pl.concat([fields, q.select(meta)], how="horizontal")
    return q.select(meta)


def _write_quarantine(con, run_id: str, path: Path) -> None:
    """quarantine.csv: the original fields of each row (as read), then reason, source_file, source_line."""
    q = quarantine_frame(con, run_id)
    with atomic(path) as tmp:
        spreadsheet.write_csv(q, tmp)                 # a formula-like text stays text in Excel


def _partitions_in_threads(work: str, parts: list[int], run_id: str) -> list[dict]:
    from concurrent.futures import ThreadPoolExecutor

    from claimaudit.partition import audit_partition

    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), os.cpu_count() or 1))) as pool:
        return list(pool.map(lambda part: audit_partition(work, part, run_id), parts))


@progress.staged("rules", lambda r: f"{sum(r['by_rule'].values()):,} findings")
def apply_rules(db: str | Path, run_id: str, *, partitions: int = 1, run_partitions=None) -> dict:
    """Run the rule catalogue on the run's lines and record history.

    ``partitions > 1`` runs the rules on that many patient-hash partitions (partition.py), by
    default in threads; ``run_partitions(work, parts, run_id)`` runs them elsewhere (the Prefect
    flow submits them to its task runner, e.g. a Dask cluster) and returns their results."""
    from claimaudit import denials, history, landing, partition
    from claimaudit.ingest.load import drop_raw

    with contextlib.ExitStack() as stack:
        work = None
        if partitions > 1:              # a private folder of the warehouse's work folder, removed afterwards
            work = stack.enter_context(workdir.private_dir(db, "part"))
            parts = partition.export(db, run_id, work, partitions)
            results = (run_partitions or _partitions_in_threads)(str(work), parts, run_id)
        with connect(db) as con:
            drop_raw(con, run_id)                              # the inputs' raw text: no longer needed
            landing.drop_quarantined(con, run_id)              # incremental runs: DQ-quarantined lines leave the ledger
            if work is None:
                timings = run_rules(con, run_id)
            else:
                partition.merge(con, run_id, work)
                timings = {f: round(sum(r["timings"].get(f, 0) for r in results), 3)
                           for f in sorted({f for r in results for f in r["timings"]})}
            carried = landing.carry_forward(con, run_id)      # incremental runs: findings of untouched days
            changes = history.record(con, run_id)
            changes["carried_forward"] = carried
            denial = denials.analyse(con, run_id)             # runs with 835 input: remits vs findings
            con.execute("UPDATE runs SET denials = ? WHERE run_id = ?",
                        [json.dumps(denial) if denial else None, run_id])
            by_rule = dict(con.execute("SELECT rule_id, count(*) FROM findings WHERE run_id = ? GROUP BY 1 ORDER BY 1",
                                       [run_id]).fetchall())
    parts = [{k: r[k] for k in ("part", "lines", "findings", "seconds")} for r in results] if work else []
    return {"timings": timings, "by_rule": by_rule, "history": changes, "partitions": parts}


FINDINGS_ORDER = "claim_id, line_number, rule_id, related_code, reference"
OUTPUTS = ("findings.csv", "findings.parquet", "quarantine.csv", "report.html", "report.xlsx", "summary.json")


def _write_findings(con: duckdb.DuckDBPyConnection, run_id: str, out: Path) -> None:
    """findings.parquet (exact values) and findings.csv (text neutralised for spreadsheets), streamed by DuckDB.

    The findings are sorted once: findings.csv is read back from the sorted findings.parquet (a single
    Parquet file scans in its row order), which at 1.6M findings saves a second sort of ~3.5 s."""
    try:
        findings = con.sql(f"SELECT * FROM findings WHERE run_id = ? ORDER BY {FINDINGS_ORDER}", params=[run_id])
        with atomic(out / "findings.parquet") as tmp, _duckdb_write_errors(out / "findings.parquet"):
            findings.write_parquet(str(tmp), compression="zstd")
        with atomic(out / "findings.csv") as tmp, _duckdb_write_errors(out / "findings.csv"):
            spreadsheet.copy_csv(con.sql(
                "SELECT * REPLACE (array_to_string(related_lines, ';') AS related_lines) FROM read_parquet(?)",
                params=[str(out / "findings.parquet")]), tmp)
    finally:
        con.close()


@contextlib.contextmanager
def _duckdb_write_errors(path: Path):
    """DuckDB reports a failed file write as an IOException: make it the OSError (naming the output)
    that the rest of the pipeline turns into one line (a full disk, a read-only folder)."""
    try:
        yield
    except duckdb.IOException as exc:
        text = str(exc)
        code = next((c for c, words in ((errno.ENOSPC, "No space left"), (errno.EACCES, "Permission denied"),
                                        (errno.EROFS, "Read-only file system")) if words in text), errno.EIO)
        raise OSError(code, os.strerror(code), str(path)) from None


def _summary(con: duckdb.DuckDBPyConnection, run_id: str, out: Path, timings: dict, extra: dict | None) -> dict:
    """summary.json's content, without its outputs list and final timings."""
    from claimaudit import coverage

    run = con.sql("SELECT * FROM runs WHERE run_id = ?", params=[run_id]).pl().to_dicts()[0]
    inputs = con.sql("SELECT source_file, path, sha256, bytes, file_format, rows_read, rows_loaded, "
                     "rows_quarantined, coalesce(warnings, '[]')::VARCHAR AS warnings FROM run_inputs "
                     "WHERE run_id = ? ORDER BY coalesce(file_index, 0), source_file", params=[run_id]).pl()
    inputs = inputs.with_columns(pl.col("warnings").str.json_decode(pl.List(pl.String)))
    reasons = con.execute("SELECT reason, count(*) AS rows FROM quarantine WHERE run_id = ? GROUP BY 1 "
                          "ORDER BY 2 DESC, 1", [run_id]).fetchall()
    lines = one(con, "SELECT count(*), count(DISTINCT (patient_id, rendering_npi, date_of_service)) "
                        "FROM claim_lines WHERE run_id = ?", [run_id])
    agg = one(con, """
        SELECT count(*) AS total,
               coalesce(sum(amount_at_risk) FILTER (WHERE severity = 'error'), 0)::DOUBLE AS dollars,
               count(*) FILTER (WHERE severity = 'error'), count(*) FILTER (WHERE severity = 'warning'),
               count(*) FILTER (WHERE severity = 'info')
        FROM findings WHERE run_id = ?""", [run_id])
    # per rule: findings, and dollars at risk as the headline counts them (error findings); per family from those
    per_rule = con.execute("""SELECT rule_id, any_value(family), count(*),
                                     coalesce(sum(amount_at_risk) FILTER (WHERE severity = 'error'), 0)
                              FROM findings WHERE run_id = ? GROUP BY 1 ORDER BY 1""", [run_id]).fetchall()
    by_rule = {r: n for r, _, n, _ in per_rule}
    dollars_by_rule = {r: round(float(d), 2) for r, _, _, d in per_rule}
    dollars_by_family: dict[str, float] = {}
    for _, family, _, d in per_rule:
        dollars_by_family[family] = round(dollars_by_family.get(family, 0.0) + float(d), 2)
    unchecked = dict(con.execute("""SELECT related_code, count(DISTINCT (claim_id, line_number)) FROM findings
                                    WHERE run_id = ? AND rule_id = 'REF-001' GROUP BY 1""", [run_id]).fetchall())
    reference = json.loads(run["reference_versions"] or "[]")
    dq = con.sql("SELECT expectation_id, level, success, unexpected_count, unexpected_percent, rows_acted_on, "
                 "examples FROM dq_results WHERE run_id = ? ORDER BY level, expectation_id", params=[run_id]).pl()
    starter = bool(run["starter_reference"])
    skipped = json.loads(run["families_skipped"] or "[]")
    summary = {
        "run_id": run_id,
        "status": "completed",
        "out_dir": str(out),
        "started_at": run["started_at"].isoformat(timespec="seconds"),
        "code_version": run["code_version"],
        "profile_default": run["profile_default"],
        "mapping": run["mapping"],
        "inputs": inputs.to_dicts(),
        "read": run["rows_read"], "loaded": run["rows_loaded"], "quarantined": run["rows_quarantined"],
        "reconciled": run["rows_read"] == run["rows_loaded"] + run["rows_quarantined"],
        "quarantine_reasons": dict(reasons),
        "columns_not_loaded": json.loads(run["columns_not_loaded"] or "[]"),
        "profile_sources": json.loads(run["profile_sources"]) if run.get("profile_sources") else None,
        "visits": lines[1],
        "reference": {
            "versions": reference,
            "starter_set_used": starter,
            "note": ("The bundled STARTER reference set was used: it is NOT the CMS NCCI PTP/MUE tables. "
                     "Load the current CMS files with `claimaudit refdata import`.") if starter else
                    "CMS reference files as loaded with `claimaudit refdata import`.",
        },
        "data_quality": {
            "skipped": "data_quality" in skipped,
            "suite": "expectations/claim_lines.json",
            "expectations": dq.height,
            "failed": dq.filter(~pl.col("success"))["expectation_id"].to_list(),
            "results": [{**r, "examples": json.loads(r["examples"] or "[]")} for r in dq.to_dicts()],
            "data_docs": "data-docs/index.html" if (out / "data-docs" / "index.html").exists() else None,
        },
        "findings": {"total": agg[0], "error": agg[2], "warning": agg[3], "info": agg[4], "by_rule": by_rule,
                     "dollars_by_rule": dollars_by_rule,
                     "dollars_by_family": dict(sorted(dollars_by_family.items(), key=lambda kv: -kv[1])),
                     "rule_names": {r: catalogue.name(r) for r in by_rule}},
        "unchecked_lines": {"ptp": unchecked.get("ptp", 0), "mue": unchecked.get("mue", 0)},
        "unchecked": coverage.causes(con, run_id),
        "families_skipped": skipped,
        "history": {"scope": run["scope_key"], "previous_run_id": run["previous_run_id"],
                    "new": run["findings_new"], "recurring": run["findings_recurring"],
                    "resolved": run["findings_resolved"], "not_compared": run["findings_not_compared"]},
        "amount_at_risk": round(agg[1], 2),
        "denials": json.loads(run["denials"]) if run.get("denials") else None,
        "timings": timings or {},
        **({"landing": json.loads(run["landing"])} if run.get("landing") else {}),
        **(extra or {}),
    }
    return summary


def _begin_xlsx(con: duckdb.DuckDBPyConnection, run_id: str, out: Path):
    """report.xlsx begun on its own connection (a cursor), which this closes."""
    from claimaudit import report

    try:
        return report.begin(con, run_id, out)
    finally:
        con.close()


@progress.staged("outputs", lambda r: f"{r['out_dir']}")
def write_outputs(db: str | Path, run_id: str, out_dir: str | Path, *, timings: dict | None = None,
                  extra: dict | None = None, finish: bool = True) -> dict:
    """findings.csv/.parquet, quarantine.csv, report.html/.xlsx and summary.json, each written whole or
    not at all. ``finish``: then, and only then, the run is marked completed (a re-render of a past
    run passes False and changes nothing in the warehouse)."""
    started = time.perf_counter()
    timings = dict(timings or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with connect(db) as con:
        _write_quarantine(con, run_id, out / "quarantine.csv")
        from claimaudit.report import render

        # Three at once, so neither core idles: report.xlsx's Findings sheet (xlsxwriter, pure Python: one
        # core) is written on a thread from the start, beside the summary's queries; findings.parquet/.csv
        # (DuckDB, straight from the warehouse, no findings frame in Python) start on a second thread when
        # the summary is done, beside report.html and the workbook's close (pure Python again).
        with ThreadPoolExecutor(max_workers=2) as pool:
            workbook = pool.submit(_begin_xlsx, con.cursor(), run_id, out)
            findings_files = None
            try:
                summary = _summary(con, run_id, out, timings, extra)
                findings_files = pool.submit(_write_findings, con.cursor(), run_id, out)
                rendered = render(con, run_id, out, summary, begun=workbook.result)
            finally:
                if findings_files is not None:   # its error (a full disk) wins over nothing; waits either way
                    findings_files.result()
        _crash_point("findings-written")
        _crash_point("reports-written")
        timings["outputs"] = round(time.perf_counter() - started, 3)
        if "total" in timings and finish:
            timings["total"] = round(timings["total"] + timings["outputs"], 3)
        summary["timings"] = timings
        names = {p.name + ("/" if p.is_dir() else "") for p in out.iterdir() if ".partial-" not in p.name}
        summary["outputs"] = sorted(names | set(rendered) | {"summary.json"})
        with atomic(out / "summary.json") as tmp:
            tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        if finish:      # last: a run is completed only when every output is in place
            con.execute("UPDATE runs SET status = 'completed', finished_at = now(), findings = ?, timings = ? "
                        "WHERE run_id = ?", [summary["findings"]["total"], json.dumps(timings), run_id])
    return summary


def fail_run(db: str | Path, run_id: str, reason: str) -> bool:
    """Mark a run failed with its one-line cause and remove what it left (runs.fail)."""
    from claimaudit import runs

    return runs.fail(db, run_id, reason)


def _direct(name: str, fn, *args, **kwargs):
    return fn(*args, **kwargs)


def _audit_steps(db: str | Path, run_id: str, out_dir: str | Path, *, data_quality: bool, timings: dict,
                 started: float, extra: dict | None = None, step=_direct, partitions: int = 1) -> dict:
    """data quality -> reference check -> rules -> outputs, for lines already in claim_lines."""
    if data_quality:
        t = time.perf_counter()
        quality = step("data-quality", check_quality, db, run_id, out_dir)
        timings["data_quality"] = round(time.perf_counter() - t, 3)
        timings.update(quality_timings(quality))
    t = time.perf_counter()
    step("reference-check", check_reference, db, run_id)
    timings["reference"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    rules = step("rules", apply_rules, db, run_id, partitions=partitions)
    timings["rules"] = round(time.perf_counter() - t, 3)
    timings["rule_files"] = rules["timings"]
    if rules["partitions"]:
        timings["rule_partitions"] = rules["partitions"]
    _crash_point("rules")
    timings["total"] = round(time.perf_counter() - started, 3)
    return step("outputs", write_outputs, db, run_id, out_dir, timings=timings, extra=extra)


def run_audit(inputs: list[str | Path], *, db: str | Path = "claimaudit.duckdb", mapping: str | None = None,
              profile: str = DEFAULT_PROFILE, out: str | Path | None = None, data_quality: bool = True,
              scope: str | None = None, wait: float = 0, partitions: int = 1, allow_unmapped: bool = False,
              therapy_ytd_file: str | Path | None = None) -> dict:
    """Run a whole audit in this process (no Prefect). Returns the summary written to summary.json.

    ``data_quality=False`` skips the Great Expectations suite (the summary says so, and history does
    not compare data-quality findings with this run); the rules then see every loaded line. The
    warehouse is locked for the run (``wait`` seconds for another run); a run of it that died is
    marked abandoned first. Any failure marks this run failed (runs.fail) before it propagates."""
    from claimaudit.ingest.formats import check_inputs
    from claimaudit.locking import warehouse_lock

    check_inputs([*inputs, *([therapy_ytd_file] if therapy_ytd_file else [])])   # before anything is created
    load_mapping(mapping)
    memory_limit()
    with warehouse_lock(db, wait=wait):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        run = start_run(db, profile=profile, mapping=mapping, out=out, scope=scope,
                        skipped=[] if data_quality else ["data_quality"])
        run_id, out_dir = run["run_id"], run["out_dir"]
        with failing_run(db, run_id), contextlib.ExitStack() as stack:
            if data_quality:            # Great Expectations imports in its worker while we ingest
                from claimaudit.quality import runner as quality_runner

                stack.enter_context(quality_runner.started_ahead())   # (or the command line started it)
            t = time.perf_counter()
            _crash_point("ingest")
            ingest(db, run_id, inputs, mapping=mapping, profile=profile, out_dir=out_dir, allow_unmapped=allow_unmapped)
            if therapy_ytd_file:
                therapy_ytd(db, run_id, therapy_ytd_file)
            timings["ingest"] = round(time.perf_counter() - t, 3)
            return _audit_steps(db, run_id, out_dir, data_quality=data_quality, timings=timings, started=started,
                                partitions=partitions)


@contextlib.contextmanager
def failing_run(db: str | Path, run_id: str):
    """Whatever stops the run (bad input, a full disk, Ctrl-C, SIGTERM) marks it failed with its cause.
    A ClaimAuditError keeps its message; any other failure becomes RunFailed naming the cause and what
    was kept. Ctrl-C/SIGTERM propagate as they are, carrying the run id for the CLI's one line."""
    from claimaudit.errors import RunFailed, as_interrupt, describe

    try:
        yield
    except BaseException as exc:
        reason = describe(exc)
        marked = fail_run(db, run_id, reason)
        kept = (f"run {run_id} marked failed and its partial work removed; earlier runs are unchanged" if marked
                else f"the warehouse could not be updated: run {run_id} will be marked abandoned by the next command")
        if isinstance(exc, ClaimAuditError):
            raise
        interrupt = as_interrupt(exc)
        if interrupt is not None:
            interrupt.claimaudit_note = kept          # type: ignore[attr-defined]
            raise interrupt from None
        raise RunFailed(f"{reason}; {kept}") from exc


def _crash_point(stage: str) -> None:
    """Crash-safety tests stop the process here: CLAIMAUDIT_TEST_KILL_AT=stage sends a real SIGKILL
    now; stage:TERM:0.5 (or INT) sends that signal 0.5 s later, i.e. in the middle of the next step."""
    spec = os.environ.get("CLAIMAUDIT_TEST_KILL_AT", "").split(":")
    if spec[0] != stage:
        return
    if len(spec) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    else:
        import threading

        sig = {"TERM": signal.SIGTERM, "INT": signal.SIGINT}[spec[1]]
        threading.Timer(float(spec[2]), os.kill, (os.getpid(), sig)).start()


def no_new_lines(db: str | Path, run_id: str, out_dir: str | Path) -> dict:
    """A landing run with no new files: nothing read (the ledger's pending days may still be audited)."""
    with connect(db) as con:
        con.execute("UPDATE runs SET rows_read = 0, rows_loaded = 0, rows_quarantined = 0 WHERE run_id = ?", [run_id])
        _write_quarantine(con, run_id, Path(out_dir) / "quarantine.csv")
    return {"read": 0, "loaded": 0, "quarantined": 0, "files": []}


def run_landing(folder: str | Path, *, db: str | Path = "claimaudit.duckdb", mapping: str | None = None,
                profile: str = DEFAULT_PROFILE, out: str | Path | None = None, scope: str | None = None,
                full: bool = False, data_quality: bool = True, settle_seconds: float | None = None, wait: float = 0,
                run_id: str | None = None, step=_direct, allow_unmapped: bool = False,
                therapy_ytd_file: str | Path | None = None) -> dict:
    """Incremental audit of a landing folder (landing.py): new files only, their days, history merged.

    ``step(name, fn, *args, **kwargs)`` runs each step (the Prefect flow passes one that makes tasks
    with retries); the default calls it directly."""
    from claimaudit import landing
    from claimaudit.locking import warehouse_lock

    label = landing.scope_label(folder, scope)
    with warehouse_lock(db, wait=wait) as abandoned:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        settle = landing.DEFAULT_SETTLE if settle_seconds is None else settle_seconds
        scanned = step("scan-landing", landing.scan, db, folder, label, settle_seconds=settle)
        run = step("start-run", start_run, db, profile=profile, mapping=mapping, out=out, scope=label, run_id=run_id,
                   skipped=[] if data_quality else ["data_quality"])
        run_id, out_dir = run["run_id"], run["out_dir"]
        with failing_run(db, run_id), contextlib.ExitStack() as stack:
            if data_quality and (scanned["new"] or full):   # only then can lines reach the DQ step
                from claimaudit.quality import runner as quality_runner

                stack.enter_context(quality_runner.started_ahead())   # GX imports while we ingest
            t = time.perf_counter()
            if scanned["new"]:
                step("ingest", ingest, db, run_id, [f["path"] for f in scanned["new"]], mapping=mapping,
                     profile=profile, out_dir=out_dir, keys_per_file=True, remits_alone=True,
                     allow_unmapped=allow_unmapped)
            else:
                step("ingest", no_new_lines, db, run_id, out_dir)
            if therapy_ytd_file:
                step("therapy-ytd", therapy_ytd, db, run_id, therapy_ytd_file)
            _crash_point("ingested")
            info = step("apply-to-ledger", landing.apply, db, run_id, label, scanned, full=full)
            info["abandoned_runs"] = abandoned
            timings["ingest"] = round(time.perf_counter() - t, 3)
            _crash_point("applied")
            summary = _audit_steps(db, run_id, out_dir, data_quality=data_quality and info["lines_audited"] > 0,
                                   timings=timings, started=started, extra={"landing": info}, step=step)
            _crash_point("outputs")
            step("finish", landing.finish, db, run_id, label)
            return summary
