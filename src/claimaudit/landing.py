"""Incremental, idempotent audits of a landing folder (scheduled runs; docs/scheduling.md).

A *scope* (``--scope`` label, else the folder's path) owns a ledger: the current version of every
claim line that arrived in its folder.

* Files are tracked by SHA-256 per scope. A re-sent identical file is skipped (and reported).
* A new file's claims replace the ledger's lines of the same ``claim_id`` (a corrected file
  supersedes the claims it carries; lines of other claims stay). Within one batch, newer files
  (by modification time, then name) win over older ones for the same claim.
* The days touched (patient + rendering NPI + DOS of every new or replaced line) become *pending*,
  and so do the later days of the same beneficiary and calendar year (the KX check, MOD-006, totals
  the whole year; its running total reads every ledger line of the beneficiary-year).
  A run audits every ledger line of every pending day, so the cross-claim rules still see the
  lines that arrived earlier, and the findings of untouched days are carried forward from the
  previous run of the scope. History (new / recurring / resolved) then compares like any run.
* Crash safety: the ledger update and the pending days are one transaction; pending days are
  cleared only after the run completed. A run killed at any point leaves either the old state or
  pending days, and the next run (which marks the dead run ``abandoned``, runs.recover) audits them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from claimaudit.errors import InputError
from claimaudit.ingest.formats import FORMATS, is_x12
from claimaudit.ingest.readers import sha256_file
from claimaudit.warehouse import connect


def scope_label(folder: str | Path, scope: str | None) -> str:
    return scope or f"folder:{Path(folder).resolve()}"


DEFAULT_SETTLE = 30.0        # seconds a file must rest before a run takes it (docs/scheduling.md)
DONE = ".done"               # <file>.done (or <stem>.done) next to a file: it is complete, take it now
IN_PROGRESS = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".filepart", ".download", ".inprogress")


def _changed_at(p: Path) -> float:
    """When the file last changed: a copy that restores the original mtime (cp -p, scp -p) still
    changes ctime, so the later of the two is the safe one."""
    st = p.stat()
    return max(st.st_mtime, st.st_ctime)


def scan(db: str | Path, folder: str | Path, scope: str, *, settle_seconds: float = DEFAULT_SETTLE) -> dict:
    """Which files of the folder are new, which were seen before (skipped), which are still being written.

    A file is taken once it has not changed for ``settle_seconds`` (size and content settle with its
    modification time), or at once when a ``<name>.done`` marker stands next to it. Files with a
    download/copy suffix (``.part``, ``.tmp``, ...) are being written: deferred, never audited."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: landing folder does not exist")
    candidates = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    markers = {p.name[:-len(DONE)] for p in candidates if p.name.lower().endswith(DONE)}
    writing = [p for p in candidates if p.suffix.lower() in IN_PROGRESS or p.name.startswith("~$")]
    rest = [p for p in candidates if p not in writing and not p.name.lower().endswith(DONE)]
    # extracts by their suffix; X12 837P claims and 835 remittances by content, whatever their name
    files = [p for p in rest if p.suffix.lower() in FORMATS or is_x12(p)]
    ignored = sorted(str(p) for p in rest if p not in files)          # reported, never silently dropped
    files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))           # oldest first: newer files win
    now = time.time()
    with connect(db) as con:
        known = {r[0] for r in con.execute("SELECT sha256 FROM landing_files WHERE scope_key = ?",
                                           [f"label:{scope}"]).fetchall()}
    new, skipped, seen = [], [], set()
    deferred = sorted(str(p) for p in writing)
    for p in files:
        done = p.name in markers or p.stem in markers
        if not done and settle_seconds and now - _changed_at(p) < settle_seconds:
            deferred.append(str(p))
            continue
        digest = sha256_file(p)
        if digest in known or digest in seen:
            skipped.append({"path": str(p), "sha256": digest})
        else:
            seen.add(digest)
            new.append({"path": str(p), "sha256": digest, "bytes": p.stat().st_size})
    return {"new": new, "skipped": skipped, "deferred": deferred, "ignored": ignored}


def apply(db: str | Path, run_id: str, scope: str, scanned: dict, *, full: bool = False) -> dict:
    """Move this run's ingested lines into the ledger and make the run's claim_lines the pending days.

    One transaction: the ledger, the landing files, the pending days and the run's lines change together.
    """
    key = f"label:{scope}"
    order = {f["path"]: i for i, f in enumerate(scanned["new"])}
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("CREATE OR REPLACE TEMP TABLE file_order (source_file VARCHAR, ord INTEGER)")
        if order:
            con.executemany("INSERT INTO file_order VALUES (?, ?)", [[p, i] for p, i in order.items()])
        # The newest file of the batch carrying a claim wins; older versions in the same batch are superseded.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE incoming AS
            SELECT l.* FROM claim_lines l JOIN file_order o USING (source_file)
            WHERE l.run_id = ?
            QUALIFY o.ord = max(o.ord) OVER (PARTITION BY l.claim_id)""", [run_id])
        replaced = con.execute("""
            SELECT count(DISTINCT claim_id), count(*) FROM ledger_lines
            WHERE scope_key = ? AND claim_id IN (SELECT claim_id FROM incoming)""", [key]).fetchall()[0]
        in_batch = con.execute("SELECT count(*) FROM claim_lines WHERE run_id = ?", [run_id]).fetchall()[0][0] - \
            con.execute("SELECT count(*) FROM incoming").fetchall()[0][0]
        con.execute("""
            INSERT INTO pending_days
            SELECT DISTINCT ?, patient_id, rendering_npi, date_of_service, ? FROM (
                SELECT patient_id, rendering_npi, date_of_service FROM incoming
                UNION ALL
                SELECT patient_id, rendering_npi, date_of_service FROM ledger_lines
                WHERE scope_key = ? AND (? OR claim_id IN (SELECT claim_id FROM incoming)
                                           -- the claims this run's 835 remittances pay: linked in this run
                                           OR claim_id IN (SELECT patient_control_number FROM remit_claims
                                                           WHERE run_id = ?)))""",
                    [key, run_id, key, full, run_id])
        # the KX check (MOD-006) totals a beneficiary's whole year: a new or replaced line changes the total
        # of every later day of its beneficiary-year, so those days are audited again too
        con.execute("""CREATE OR REPLACE TEMP TABLE kx_since AS
                       SELECT patient_id, year(date_of_service) AS year, min(date_of_service) AS since FROM (
                           SELECT patient_id, date_of_service FROM incoming
                           UNION ALL
                           SELECT patient_id, date_of_service FROM ledger_lines
                           WHERE scope_key = ? AND claim_id IN (SELECT claim_id FROM incoming))
                       GROUP BY ALL""", [key])
        con.execute("DELETE FROM ledger_lines WHERE scope_key = ? AND claim_id IN (SELECT claim_id FROM incoming)", [key])
        con.execute("INSERT INTO ledger_lines BY NAME SELECT ? AS scope_key, * FROM incoming", [key])
        con.execute("""INSERT INTO pending_days
                       SELECT DISTINCT ?, l.patient_id, l.rendering_npi, l.date_of_service, ? FROM ledger_lines l
                       JOIN kx_since k ON k.patient_id = l.patient_id AND k.year = year(l.date_of_service)
                                      AND l.date_of_service > k.since
                       WHERE l.scope_key = ?""", [key, run_id, key])
        per_file = dict(con.execute("SELECT source_file, count(*) FROM claim_lines WHERE run_id = ? GROUP BY 1",
                                    [run_id]).fetchall())
        for f in scanned["new"]:
            con.execute("INSERT INTO landing_files VALUES (?, ?, ?, ?, ?, 'applied', ?, NULL, now())",
                        [key, f["sha256"], f["path"], f["bytes"], run_id, per_file.get(f["path"], 0)])
        # The audit covers every ledger line of every pending day (this run's and any left by a dead run).
        con.execute("DELETE FROM claim_lines WHERE run_id = ?", [run_id])
        con.execute("""
            INSERT INTO claim_lines BY NAME
            SELECT l.* EXCLUDE (scope_key, run_id), ? AS run_id FROM ledger_lines l
            WHERE l.scope_key = ? AND (l.patient_id, l.rendering_npi, l.date_of_service) IN (
                SELECT (patient_id, rendering_npi, date_of_service) FROM pending_days WHERE scope_key = ?)""",
                    [run_id, key, key])
        audited = con.execute("""SELECT count(*), count(DISTINCT (patient_id, rendering_npi, date_of_service))
                                 FROM claim_lines WHERE run_id = ?""", [run_id]).fetchall()[0]
        ledger = con.execute("SELECT count(*) FROM ledger_lines WHERE scope_key = ?", [key]).fetchall()[0][0]
        remits = con.execute("""SELECT count(DISTINCT source_file), count(*),
                                       count(*) FILTER (WHERE patient_control_number IN (
                                           SELECT claim_id FROM ledger_lines WHERE scope_key = ?))
                                FROM remit_claims WHERE run_id = ?""", [key, run_id]).fetchall()[0]
        info = {
            "scope": scope,
            "files_new": [f["path"] for f in scanned["new"]],
            "files_skipped": [f["path"] for f in scanned["skipped"]],
            "files_deferred": scanned["deferred"],
            "files_ignored": scanned.get("ignored", []),
            "remittance_files": remits[0], "remit_claims": remits[1], "remit_claims_in_ledger": remits[2],
            "claims_replaced": replaced[0], "lines_replaced": replaced[1],
            "lines_superseded_in_batch": in_batch,
            "full_reaudit": full,
            "days_audited": audited[1], "lines_audited": audited[0], "ledger_lines": ledger,
        }
        con.execute("UPDATE runs SET landing = ? WHERE run_id = ?", [json.dumps(info), run_id])
        con.execute("COMMIT")
    return info


def _landing_scope(con, run_id: str) -> str | None:
    """The scope key of a landing run; None for an ordinary audit."""
    row = con.execute("SELECT scope_key, landing FROM runs WHERE run_id = ?", [run_id]).fetchall()
    return row[0][0] if row and row[0][1] is not None else None


def drop_quarantined(con, run_id: str) -> int:
    """Ledger lines of the audited days that the data-quality step quarantined leave the ledger too."""
    key = _landing_scope(con, run_id)
    if key is None:
        return 0
    return len(con.execute("""
        DELETE FROM ledger_lines l
        WHERE l.scope_key = ?
          AND (l.patient_id, l.rendering_npi, l.date_of_service) IN (
              SELECT (patient_id, rendering_npi, date_of_service) FROM pending_days WHERE scope_key = ?)
          AND (l.claim_id, l.line_number) NOT IN (SELECT (claim_id, line_number) FROM claim_lines WHERE run_id = ?)
        RETURNING 1""", [key, key, run_id]).fetchall())


def carry_forward(con, run_id: str) -> int:
    """Copy the previous completed run's findings on days this run did not audit (unchanged lines)."""
    key = _landing_scope(con, run_id)
    if key is None:
        return 0
    previous = con.execute("""SELECT run_id FROM runs WHERE scope_key = ? AND status = 'completed' AND run_id <> ?
                              ORDER BY started_at DESC LIMIT 1""", [key, run_id]).fetchall()
    if not previous:
        return 0
    return len(con.execute("""
        INSERT INTO findings BY NAME
        SELECT f.* REPLACE (? AS run_id) FROM findings f
        WHERE f.run_id = ? AND (f.patient_id, f.rendering_npi, f.date_of_service) NOT IN (
            SELECT (patient_id, rendering_npi, date_of_service) FROM pending_days WHERE scope_key = ?)
        RETURNING 1""", [run_id, previous[0][0], key]).fetchall())


def finish(db: str | Path, run_id: str, scope: str) -> None:
    """The run completed: its pending days are audited and its files are done."""
    key = f"label:{scope}"
    with connect(db) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM pending_days WHERE scope_key = ?", [key])
        con.execute("UPDATE landing_files SET status = 'audited' WHERE scope_key = ? AND status = 'applied'", [key])
        con.execute("COMMIT")


def mark_quarter(db: str | Path, scope: str, start, end) -> int:
    """Make every ledger day with a DOS in [start, end] pending (a reference-data refresh re-audits them)."""
    key = f"label:{scope}"
    with connect(db) as con:
        return len(con.execute("""
            INSERT INTO pending_days
            SELECT DISTINCT scope_key, patient_id, rendering_npi, date_of_service, 'refdata-refresh' FROM ledger_lines
            WHERE scope_key = ? AND date_of_service BETWEEN ? AND ? RETURNING 1""", [key, start, end]).fetchall())
