"""History compares like with like: hand-made findings and unchecked days of two runs, every branch.

A finding of the later run is recurring (also in the earlier run), not compared (the earlier run did
not check its family or rule on its day, or skipped the family) or new; a finding of the earlier run
that is gone is not compared (the later run did not check it) or resolved. The unit is the day:
patient + rendering NPI + date of service.
"""

from __future__ import annotations

import datetime as dt

from claimaudit import history
from claimaudit.warehouse import connect

DAY, OTHER_DAY = dt.date(2026, 3, 2), dt.date(2026, 3, 3)

# claim_id, rule_id, family, patient, date, related_code
EARLIER = [
    ("rec", "PTP-002", "ncci_ptp", "P1", DAY, "97140"),          # in both runs: recurring
    ("gone", "MUE-002", "mue", "P1", DAY, None),                 # B checked MUE on P1's day: resolved
    ("gone-unchecked", "MUE-002", "mue", "P2", DAY, None),       # B had no MUE data for P2's day
    ("gone-skipped", "DQ-003", "data_quality", "P1", DAY, None),  # B ran without the data-quality suite
    # what A could not check
    ("t7", "TIME-007", "units_time", "P3", DAY, None),           # a timed code without minutes on P3's day
    ("ref-kx", "REF-001", "reference", "P4", DAY, "kx"),         # no KX thresholds for P4's day: MOD-006
    ("ref-ptp", "REF-001", "reference", "P6", DAY, "ptp"),       # no PTP release for P6's day
]
LATER = [
    ("rec", "PTP-002", "ncci_ptp", "P1", DAY, "97140"),
    ("new", "TIME-001", "units_time", "P1", DAY, None),          # A checked P1's time: new
    ("new-other-day", "TIME-001", "units_time", "P3", OTHER_DAY, None),   # A's gap was another day
    ("unchecked-family", "TIME-001", "units_time", "P3", DAY, None),      # A's TIME-007 day
    ("unchecked-rule", "MOD-006", "modifiers", "P4", DAY, None),          # A's REF-001 kx day
    ("unchecked-line", "COV-001", "coverage", "P5", DAY, None),           # A's unchecked_lines row
    ("unchecked-ptp", "PTP-001", "ncci_ptp", "P6", DAY, "97530"),
    ("new-rule-elsewhere", "MOD-001", "modifiers", "P4", DAY, None),      # kx stops MOD-006 only
    # what B could not check
    ("ref-mue", "REF-001", "reference", "P2", DAY, "mue"),
]


def _run(con, run_id: str, started: dt.datetime, findings: list, skipped: str | None = None) -> None:
    con.execute("INSERT INTO runs (run_id, started_at, status, profile_default, code_version, families_skipped) "
                "VALUES (?, ?, 'completed', 'medicare', 'test', ?)", [run_id, started, skipped])
    for claim, rule, family, patient, day, related in findings:
        con.execute("INSERT INTO findings (run_id, rule_id, family, severity, claim_id, line_number, patient_id, "
                    "rendering_npi, date_of_service, related_code, message) "
                    "VALUES (?, ?, ?, 'error', ?, 1, ?, '1234567893', ?, ?, 'm')",
                    [run_id, rule, family, claim, patient, day, related])
    con.execute(f"UPDATE findings SET fingerprint = {history.FINGERPRINT_SQL} WHERE run_id = ?", [run_id])


def test_history_new_recurring_resolved_and_not_compared_by_family_rule_and_day(tmp_path):
    with connect(tmp_path / "w.duckdb") as con:
        _run(con, "A", dt.datetime(2026, 3, 10), EARLIER)
        _run(con, "B", dt.datetime(2026, 3, 11), LATER, skipped='["data_quality"]')
        con.execute("INSERT INTO unchecked_lines (run_id, scope, reason, claim_id, line_number, patient_id, rendering_npi, "
                    "date_of_service) VALUES ('A', 'COV-001', 'no provider discipline', 'x', 1, 'P5', '1234567893', ?)",
                    [DAY])
        changes = history.diff(con, "A", "B")
        found = {(c, claim) for c, claim in changes.select("change", "claim_id").iter_rows()}
        assert found == {("new", "new"), ("new", "new-other-day"), ("new", "new-rule-elsewhere"), ("new", "ref-mue"),
                         ("resolved", "gone"), ("resolved", "t7"), ("resolved", "ref-kx"), ("resolved", "ref-ptp")}
        # not compared: four of B's (family, rule, unchecked line, PTP) and two of A's (no MUE data, no DQ)
        assert history.diff_counts(con, "A", "B") == {"new": 4, "recurring": 1, "resolved": 4, "not_compared": 6}
        assert set(history.diff(con, "A", "B", sides=("earlier",))["claim_id"]) == {"gone", "t7", "ref-kx", "ref-ptp"}
        # a limit gives the first rows of the same list (the report shows a few)
        assert history.diff(con, "A", "B", limit=3).rows() == changes.head(3).rows()
        assert history.diff(con, "A", "B", sides=("earlier",), limit=0).height == 0
