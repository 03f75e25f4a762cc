"""The audit, as plain steps: start -> ingest -> reference check -> rules -> outputs.

Each step takes the warehouse path and the run id (never data frames), opens its own connection
and returns a small dict of counts, so the Prefect flow in flows/audit_flow.py can run the same
steps as tasks without claim data passing through Prefect. ``run_audit`` chains them without Prefect.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from claimaudit import __version__
from claimaudit.errors import ClaimAuditError, InputError
from claimaudit.ingest.mapping import load_mapping
from claimaudit.ingest.normalize import normalize, rejects_as_quarantine, split
from claimaudit.ingest.readers import sha256_file, read_raw
from claimaudit.refdata.store import ensure_reference
from claimaudit.rules.profiles import load_profiles
from claimaudit.rules.runner import prepare, run_rules
from claimaudit.warehouse import connect, one

DEFAULT_PROFILE = "medicare"
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
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def start_run(db: str | Path, *, profile: str = DEFAULT_PROFILE, mapping: str | None = None,
              out: str | Path | None = None, run_id: str | None = None, scope: str | None = None) -> dict:
    profiles = load_profiles()
    if profile not in profiles:
        raise ClaimAuditError(f"unknown profile {profile!r}; profiles: {', '.join(sorted(profiles))}")
    load_mapping(mapping)                                   # fail before reading any data
    run_id = run_id or new_run_id()
    out_dir = Path(out) if out else DEFAULT_OUT / run_id
    with connect(db) as con:
        con.execute("INSERT INTO runs (run_id, started_at, status, profile_default, mapping, code_version, out_dir, "
                    "scope_key) VALUES (?, now(), 'running', ?, ?, ?, ?, ?)",
                    [run_id, profile, mapping or "canonical", code_version(), str(out_dir),
                     f"label:{scope}" if scope else None])
    out_dir.mkdir(parents=True, exist_ok=True)
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
        con.execute("INSERT INTO run_inputs VALUES (?, ?, ?, ?, ?, 'x12-835', 0, 0, 0, ?)",
                    [run_id, str(path), str(Path(path).resolve()), sha256_file(Path(path)),
                     Path(path).stat().st_size, json.dumps([*got["warnings"], note])])


def ingest(db: str | Path, run_id: str, inputs: list[str | Path], *, mapping: str | None = None,
           profile: str = DEFAULT_PROFILE, out_dir: str | Path, keys_per_file: bool = False,
           remits_alone: bool = False) -> dict:
    """Read every input, load good lines into claim_lines, quarantine the rest; read = loaded + quarantined.

    ``remits_alone``: 835 remittances may come without claims (a landing run: they pay claims the
    ledger already holds)."""
    if not inputs:
        raise InputError("no input files given")
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
    known = set(load_profiles())
    typed, rejects, files = [], [], []
    raw_columns: list[str] = []
    canonical = load_mapping(None)
    for path in inputs:
        raw = read_raw(path, spec)
        source = str(path)
        file_spec = canonical if raw.file_format.startswith("x12") else spec     # the X12 reader emits canonical names
        typed.append(normalize(raw, file_spec, default_profile=profile, known_profiles=known, source_file=source))
        rejects.append(rejects_as_quarantine(raw, source))
        raw_columns += [c for c in raw.frame.columns if c != "__line" and c not in raw_columns]
        files.append({"source_file": source, "path": str(Path(path).resolve()), "sha256": raw.sha256,
                      "bytes": raw.bytes, "file_format": raw.file_format,
                      "rows_read": raw.frame.height + raw.rejects.height, "warnings": raw.warnings})
    result = split(pl.concat(typed, how="diagonal_relaxed"), raw_columns, [r for r in rejects if r.height],
                   keys_per_file=keys_per_file)
    del typed, raw                       # the raw strings: only the quarantined rows' copies are needed now
    loaded, quarantined = result.loaded, result.quarantined
    read = sum(f["rows_read"] for f in files)
    if read != loaded.height + quarantined.height:     # a bug, never a data problem: stop loudly
        raise ClaimAuditError(f"internal error: read {read} rows but loaded {loaded.height} "
                              f"+ quarantined {quarantined.height}")
    per_loaded = dict(loaded.group_by("source_file").len().iter_rows())
    per_quarantined = dict(quarantined.group_by("source_file").len().iter_rows())
    for f in files:
        f["rows_loaded"] = per_loaded.get(f["source_file"], 0)
        f["rows_quarantined"] = per_quarantined.get(f["source_file"], 0)

    meta = ["reason", "source_file", "source_line"]
    record_cols = [c for c in quarantined.columns if c not in meta]
    q_table = quarantined.select(  # noqa: F841 (queried by name below)
        pl.col("source_file"), pl.col("source_line").cast(pl.Int64), pl.col("reason"),
        record=pl.struct(record_cols).struct.json_encode() if record_cols else pl.lit(None, pl.String))
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM claim_lines WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM quarantine WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM run_inputs WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO claim_lines BY NAME SELECT ? AS run_id, * FROM loaded", [run_id])
        con.execute("INSERT INTO quarantine BY NAME SELECT ? AS run_id, * FROM q_table", [run_id])
        for f in files:
            con.execute("INSERT INTO run_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [run_id, f["source_file"], f["path"], f["sha256"], f["bytes"], f["file_format"],
                         f["rows_read"], f["rows_loaded"], f["rows_quarantined"], json.dumps(f["warnings"])])
        _load_remits(con, run_id, remits)
        con.execute("UPDATE runs SET rows_read = ?, rows_loaded = ?, rows_quarantined = ? WHERE run_id = ?",
                    [read, loaded.height, quarantined.height, run_id])
        con.execute("COMMIT")
        _write_quarantine(con, run_id, Path(out_dir) / "quarantine.csv")   # rewritten by write_outputs
    return {"read": read, "loaded": loaded.height, "quarantined": quarantined.height, "files": files}


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
                for r in versions.to_dicts()]
        starter = any(v["is_starter"] and v["lines"] for v in used)
        con.execute("UPDATE runs SET reference_versions = ?, starter_reference = ? WHERE run_id = ?",
                    [json.dumps(used), starter, run_id])
    return {"versions": used, "starter_reference": starter,
            "unchecked_lines": {"ptp": unchecked[0], "mue": unchecked[1]}}


def check_quality(db: str | Path, run_id: str, out_dir: str | Path) -> dict:
    """Run the Great Expectations suite; blocking failures are quarantined, warnings become DQ findings."""
    from claimaudit.quality import run_quality

    return run_quality(db, run_id, out_dir)


def _write_quarantine(con, run_id: str, path: Path) -> None:
    """quarantine.csv: the original fields of each row (as read), then reason, source_file, source_line."""
    q = con.sql("SELECT source_file, source_line, reason, record FROM quarantine WHERE run_id = ? "
                "ORDER BY source_file, source_line", params=[run_id]).pl()
    meta = ["reason", "source_file", "source_line"]
    if q.height and q["record"].drop_nulls().len():
        ndjson = "\n".join(q["record"].fill_null("{}").to_list())
        fields = pl.read_ndjson(io.StringIO(ndjson), infer_schema_length=None)
        fields = fields.select([pl.col(c).cast(pl.String) if not isinstance(t, (pl.List, pl.Struct))
                                else pl.col(c).cast(pl.List(pl.String)).list.join(" ") for c, t in fields.schema.items()])
        q = pl.concat([fields, q.select(meta)], how="horizontal")
    else:
        q = q.select(meta)
    q.write_csv(path)


def _partitions_in_threads(work: str, parts: list[int], run_id: str) -> list[dict]:
    from concurrent.futures import ThreadPoolExecutor

    from claimaudit.partition import audit_partition

    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), os.cpu_count() or 1))) as pool:
        return list(pool.map(lambda part: audit_partition(work, part, run_id), parts))


def apply_rules(db: str | Path, run_id: str, *, partitions: int = 1, run_partitions=None) -> dict:
    """Run the rule catalogue on the run's lines and record history.

    ``partitions > 1`` runs the rules on that many patient-hash partitions (partition.py), by
    default in threads; ``run_partitions(work, parts, run_id)`` runs them elsewhere (the Prefect
    flow submits them to its task runner, e.g. a Dask cluster) and returns their results."""
    from claimaudit import denials, history, landing, partition

    work = None
    if partitions > 1:
        work = Path(db).resolve().parent / ".claimaudit-work" / run_id
        parts = partition.export(db, run_id, work, partitions)
        results = (run_partitions or _partitions_in_threads)(str(work), parts, run_id)
    with connect(db) as con:
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
        con.execute("UPDATE runs SET denials = ? WHERE run_id = ?", [json.dumps(denial) if denial else None, run_id])
        by_rule = dict(con.execute("SELECT rule_id, count(*) FROM findings WHERE run_id = ? GROUP BY 1 ORDER BY 1",
                                   [run_id]).fetchall())
    if work is not None:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()                              # .claimaudit-work, when no other run uses it
    parts = [{k: r[k] for k in ("part", "lines", "findings", "seconds")} for r in results] if work else []
    return {"timings": timings, "by_rule": by_rule, "history": changes, "partitions": parts}


FINDINGS_ORDER = "claim_id, line_number, rule_id, related_code, reference"


def write_outputs(db: str | Path, run_id: str, out_dir: str | Path, *, timings: dict | None = None,
                  extra: dict | None = None) -> dict:
    """findings.csv/.parquet, quarantine.csv, report.html/.xlsx and summary.json; the run is marked completed."""
    started = time.perf_counter()
    timings = dict(timings or {})
    out = Path(out_dir)
    with connect(db) as con:
        _write_quarantine(con, run_id, out / "quarantine.csv")
        findings = con.sql(f"SELECT * FROM findings WHERE run_id = ? ORDER BY {FINDINGS_ORDER}", params=[run_id]).pl()
        findings.write_parquet(out / "findings.parquet")
        findings.with_columns(pl.col("related_lines").list.join(";")).write_csv(out / "findings.csv")
        run = con.sql("SELECT * FROM runs WHERE run_id = ?", params=[run_id]).pl().to_dicts()[0]
        inputs = con.sql("SELECT source_file, path, sha256, bytes, file_format, rows_read, rows_loaded, "
                         "rows_quarantined, coalesce(warnings, '[]')::VARCHAR AS warnings FROM run_inputs "
                         "WHERE run_id = ? ORDER BY source_file", params=[run_id]).pl()
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
        by_rule = dict(con.execute("SELECT rule_id, count(*) FROM findings WHERE run_id = ? GROUP BY 1 ORDER BY 1",
                                   [run_id]).fetchall())
        reference = json.loads(run["reference_versions"] or "[]")
        dq = con.sql("SELECT expectation_id, level, success, unexpected_count, unexpected_percent, rows_acted_on, "
                     "examples FROM dq_results WHERE run_id = ? ORDER BY level, expectation_id", params=[run_id]).pl()
        starter = bool(run["starter_reference"])
        summary = {
            "run_id": run_id,
            "out_dir": str(out),
            "started_at": run["started_at"].isoformat(timespec="seconds"),
            "code_version": run["code_version"],
            "profile_default": run["profile_default"],
            "mapping": run["mapping"],
            "inputs": inputs.to_dicts(),
            "read": run["rows_read"], "loaded": run["rows_loaded"], "quarantined": run["rows_quarantined"],
            "reconciled": run["rows_read"] == run["rows_loaded"] + run["rows_quarantined"],
            "quarantine_reasons": dict(reasons),
            "visits": lines[1],
            "reference": {
                "versions": reference,
                "starter_set_used": starter,
                "note": ("The bundled STARTER reference set was used: it is NOT the CMS NCCI PTP/MUE tables. "
                         "Load the current CMS files with `claimaudit refdata import`.") if starter else
                        "CMS reference files as loaded with `claimaudit refdata import`.",
            },
            "data_quality": {
                "skipped": dq.height == 0,
                "suite": "expectations/claim_lines.json",
                "expectations": dq.height,
                "failed": dq.filter(~pl.col("success"))["expectation_id"].to_list(),
                "results": [{**r, "examples": json.loads(r["examples"] or "[]")} for r in dq.to_dicts()],
                "data_docs": "data-docs/index.html" if (out / "data-docs" / "index.html").exists() else None,
            },
            "findings": {"total": agg[0], "error": agg[2], "warning": agg[3], "info": agg[4], "by_rule": by_rule},
            "history": {"scope": run["scope_key"], "previous_run_id": run["previous_run_id"],
                        "new": run["findings_new"], "recurring": run["findings_recurring"],
                        "resolved": run["findings_resolved"]},
            "amount_at_risk": round(agg[1], 2),
            "denials": json.loads(run["denials"]) if run.get("denials") else None,
            "timings": timings or {},
            "outputs": sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()) + ["summary.json"],
            **(extra or {}),
        }
        con.execute("UPDATE runs SET status = 'completed', finished_at = now(), findings = ?, timings = ? "
                    "WHERE run_id = ?", [agg[0], json.dumps(timings or {}), run_id])
        from claimaudit.report import render

        summary["outputs"] += render(con, run_id, out, summary)
        timings["outputs"] = round(time.perf_counter() - started, 3)
        if "total" in timings:
            timings["total"] = round(timings["total"] + timings["outputs"], 3)
        summary["timings"] = timings
        con.execute("UPDATE runs SET timings = ? WHERE run_id = ?", [json.dumps(timings), run_id])
    summary["outputs"] = sorted(set(summary["outputs"]))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return summary


def fail_run(db: str | Path, run_id: str, reason: str) -> None:
    try:
        with connect(db) as con:
            con.execute("UPDATE runs SET status = 'failed', finished_at = now(), timings = ? WHERE run_id = ?",
                        [json.dumps({"error": reason}), run_id])
    except ClaimAuditError:
        pass


def _direct(name: str, fn, *args, **kwargs):
    return fn(*args, **kwargs)


def _audit_steps(db: str | Path, run_id: str, out_dir: str | Path, *, data_quality: bool, timings: dict,
                 started: float, extra: dict | None = None, step=_direct, partitions: int = 1) -> dict:
    """data quality -> reference check -> rules -> outputs, for lines already in claim_lines."""
    if data_quality:
        t = time.perf_counter()
        quality = step("data-quality", check_quality, db, run_id, out_dir)
        timings["data_quality"] = round(time.perf_counter() - t, 3)
        timings["data_quality_validate"] = quality["seconds"]["validate"]
    t = time.perf_counter()
    ref = step("reference-check", check_reference, db, run_id)
    timings["reference"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    rules = step("rules", apply_rules, db, run_id, partitions=partitions)
    timings["rules"] = round(time.perf_counter() - t, 3)
    timings["rule_files"] = rules["timings"]
    if rules["partitions"]:
        timings["rule_partitions"] = rules["partitions"]
    _crash_point("rules")
    timings["total"] = round(time.perf_counter() - started, 3)
    return step("outputs", write_outputs, db, run_id, out_dir, timings=timings,
                extra={"unchecked_lines": ref["unchecked_lines"], **(extra or {})})


def run_audit(inputs: list[str | Path], *, db: str | Path = "claimaudit.duckdb", mapping: str | None = None,
              profile: str = DEFAULT_PROFILE, out: str | Path | None = None, data_quality: bool = True,
              scope: str | None = None, wait: float = 0, partitions: int = 1) -> dict:
    """Run a whole audit in this process (no Prefect). Returns the summary written to summary.json.

    ``data_quality=False`` skips the Great Expectations suite (the summary says so); the rules then
    see every loaded line. The warehouse is locked for the run (``wait`` seconds for another run)."""
    from claimaudit.locking import warehouse_lock

    with warehouse_lock(db, wait=wait):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        run = start_run(db, profile=profile, mapping=mapping, out=out, scope=scope)
        run_id, out_dir = run["run_id"], run["out_dir"]
        try:
            t = time.perf_counter()
            ingest(db, run_id, inputs, mapping=mapping, profile=profile, out_dir=out_dir)
            timings["ingest"] = round(time.perf_counter() - t, 3)
            return _audit_steps(db, run_id, out_dir, data_quality=data_quality, timings=timings, started=started,
                                partitions=partitions)
        except ClaimAuditError as exc:
            fail_run(db, run_id, str(exc))
            raise


def _crash_point(stage: str) -> None:
    """Crash-safety tests kill the process here with a real SIGKILL (CLAIMAUDIT_TEST_KILL_AT=stage)."""
    if os.environ.get("CLAIMAUDIT_TEST_KILL_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def no_new_lines(db: str | Path, run_id: str, out_dir: str | Path) -> dict:
    """A landing run with no new files: nothing read (the ledger's pending days may still be audited)."""
    with connect(db) as con:
        con.execute("UPDATE runs SET rows_read = 0, rows_loaded = 0, rows_quarantined = 0 WHERE run_id = ?", [run_id])
        _write_quarantine(con, run_id, Path(out_dir) / "quarantine.csv")
    return {"read": 0, "loaded": 0, "quarantined": 0, "files": []}


def run_landing(folder: str | Path, *, db: str | Path = "claimaudit.duckdb", mapping: str | None = None,
                profile: str = DEFAULT_PROFILE, out: str | Path | None = None, scope: str | None = None,
                full: bool = False, data_quality: bool = True, settle_seconds: float = 0, wait: float = 0,
                run_id: str | None = None, step=_direct) -> dict:
    """Incremental audit of a landing folder (landing.py): new files only, their days, history merged.

    ``step(name, fn, *args, **kwargs)`` runs each step (the Prefect flow passes one that makes tasks
    with retries); the default calls it directly."""
    from claimaudit import landing
    from claimaudit.locking import warehouse_lock

    label = landing.scope_label(folder, scope)
    with warehouse_lock(db, wait=wait):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        abandoned = step("recover", landing.recover, db)
        scanned = step("scan-landing", landing.scan, db, folder, label, settle_seconds=settle_seconds)
        run = step("start-run", start_run, db, profile=profile, mapping=mapping, out=out, scope=label, run_id=run_id)
        run_id, out_dir = run["run_id"], run["out_dir"]
        try:
            t = time.perf_counter()
            if scanned["new"]:
                step("ingest", ingest, db, run_id, [f["path"] for f in scanned["new"]], mapping=mapping,
                     profile=profile, out_dir=out_dir, keys_per_file=True, remits_alone=True)
            else:
                step("ingest", no_new_lines, db, run_id, out_dir)
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
        except ClaimAuditError as exc:
            fail_run(db, run_id, str(exc))
            raise
