"""Hand-computed edge cases: the day scope across claims, unchecked days, coverage, complete findings."""

from __future__ import annotations

import polars as pl

from conftest import SAMPLE, audit_lines, keys, line, mue_fixture, ptp_fixture

PTP = ["97140\t97530\t\t20000101\t*\t1"]
MUE = ["97035,2,3 Date of Service Edit: Clinical"]
D = "2024-06-04"
OTHER_NPI = "1245319599"


def refs(tmp_path):
    return ptp_fixture(tmp_path, PTP), mue_fixture(tmp_path, MUE)


def test_day_is_patient_provider_date_across_claims(tmp_path):
    f = audit_lines(tmp_path,
                    # PTP pair split over claims: a pair
                    line("A", 1, "97140", "GP", minutes=15, dos=D), line("B", 1, "97530", "GP", minutes=15, dos=D),
                    # same codes, other provider or other date: no pair
                    line("C", 1, "97140", "GP", minutes=15, dos=D, patient="P2"),
                    line("D", 1, "97530", "GP", minutes=15, dos=D, patient="P2", npi=OTHER_NPI),
                    line("E", 1, "97140", "GP", minutes=15, dos=D, patient="P3"),
                    line("F", 1, "97530", "GP", minutes=15, dos="2024-06-05", patient="P3"),
                    # MUE units summed across claims only within the day
                    line("G", 1, "97035", "GP", units=2, minutes=30, dos=D, patient="P4"),
                    line("H", 1, "97035", "GP", units=1, minutes=15, dos=D, patient="P4", npi=OTHER_NPI),
                    # timed minutes pooled across claims: 8 + 7 = 15 minutes support 1 unit, 2 billed
                    line("I", 1, "97110", "GP", minutes=8, dos=D, patient="P5"),
                    line("J", 1, "97112", "GP", minutes=7, dos=D, patient="P5"),
                    reference=refs(tmp_path))
    assert keys(f) == {("PTP-002", "B", 1), ("TIME-001", "I", 1)}


def test_a_timed_line_without_minutes_leaves_the_day_unchecked(tmp_path):
    f = audit_lines(tmp_path, line("A", 1, "97110", "GP", units=4, minutes="", dos=D),
                    line("A", 2, "97112", "GP", units=3, minutes=10, dos=D),       # would be TIME-001
                    line("A", 3, "97161", "GP", units=2, dos=D),                     # untimed: still checked
                    reference=refs(tmp_path))
    assert keys(f) == {("TIME-007", "A", 1), ("TIME-005", "A", 3)}
    unchecked = f.filter(pl.col("rule_id") == "TIME-007").row(0, named=True)
    assert unchecked["severity"] == "warning" and unchecked["amount_at_risk"] is None


def test_dates_after_the_loaded_ptp_release_are_unchecked_not_clean(tmp_path):
    f = audit_lines(tmp_path, line("A", 1, "97140", "GP", minutes=15, dos="2026-10-02"),
                    line("A", 2, "97530", "GP", minutes=15, dos="2026-10-02"), reference=refs(tmp_path))
    # v322r0 speaks for DOS up to 2026-09-30: the pair is not judged, each line is reported unchecked
    assert keys(f) == {("REF-001", "A", 1), ("REF-001", "A", 2)}
    assert set(f["expected"]) == {"NCCI PTP reference in force on 2026-10-02"}


def test_duplicates_stay_in_the_data_for_other_rules(tmp_path):
    f = audit_lines(tmp_path, line("A", 1, "97140", "GP", minutes=15, dos=D), line("B", 1, "97140", "GP", minutes=15, dos=D),
                    line("B", 2, "97530", "GP", minutes=15, dos=D), reference=refs(tmp_path))
    assert keys(f) == {("DUP-001", "B", 1), ("PTP-002", "B", 2)}
    assert f.filter(pl.col("rule_id") == "PTP-002")["related_lines"].to_list() == [["A:1", "B:1", "B:2"]]


def test_every_finding_on_the_sample_fills_the_schema(tmp_path):
    from claimaudit import pipeline
    from claimaudit.schema import FAMILIES, FINDINGS_COLUMNS, SEVERITIES

    pipeline.run_audit([SAMPLE], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    f = pl.read_parquet(tmp_path / "out" / "findings.parquet")
    assert f.columns == FINDINGS_COLUMNS
    required = ["rule_id", "family", "severity", "claim_id", "line_number", "patient_id", "rendering_npi",
                "date_of_service", "procedure_code", "related_lines", "expected", "actual", "message",
                "recommended_action", "predicted_carc", "reference"]
    assert f.select(pl.col(required).null_count()).sum_horizontal().item() == 0
    unknown = f.filter(pl.col("amount_at_risk").is_null())["rule_id"].unique().to_list()
    # unchecked lines: the amount is unknown; MOD-010 (eligible for review): nothing at risk
    assert set(unknown) <= {"TIME-007", "REF-001", "MOD-010"}
    assert set(f["severity"]) <= set(SEVERITIES) and set(f["family"]) <= set(FAMILIES)
    ptp = f.filter(pl.col("family") == "ncci_ptp")
    assert ptp["related_code"].null_count() == 0


def test_findings_do_not_depend_on_input_order(tmp_path):
    """Same inputs, same findings: a day billed to two payers (two profiles) and a PTP pair whose two
    column-1 lines bypass with different modifiers must give identical findings in either row order."""
    rows = [line("A", 1, "97035", "GP", units=2, minutes=30, dos=D, profile="medicare"),
            line("B", 1, "97035", "GP", units=1, minutes=15, dos=D, profile="commercial_cpt"),
            line("A", 2, "97161", "GP", dos=D, profile="medicare"),
            line("B", 2, "97161", "GP", dos=D, profile="commercial_cpt"),
            line("C", 1, "97140", "GP", "59", minutes=15, dos="2024-06-05"),
            line("C", 2, "97140", "GP", "XS", minutes=15, dos="2024-06-05"),
            line("C", 3, "97530", "GP", minutes=15, dos="2024-06-05")]
    first = audit_lines(tmp_path, *rows, reference=refs(tmp_path), name="forward")
    second = audit_lines(tmp_path, *reversed(rows), reference=refs(tmp_path), name="reversed")
    key = ["rule_id", "claim_id", "line_number", "related_code"]
    a, b = (f.drop("run_id").sort(key) for f in (first, second))
    assert {"MUE-002", "TIME-005", "PTP-003"} <= set(a["rule_id"])
    assert a.equals(b)
    # a group spanning two payers takes its CARC from its first line (claim A, Medicare), not any line
    mue = a.filter(pl.col("rule_id") == "MUE-002").row(0, named=True)
    assert (mue["claim_id"], mue["predicted_carc"]) == ("A", "CO-96 + N362 (Noridian) or CO-151 (CGS)")
