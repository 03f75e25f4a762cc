"""The benchmark generator stays loadable (exact line count, nothing quarantined, reference files import), and
the pandas baseline finds what the audit finds."""

from __future__ import annotations

import datetime as dt
import importlib.util

import polars as pl

from claimaudit import pipeline
from claimaudit.refdata import import_paths
from claimaudit.warehouse import connect
from conftest import REPO

spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def test_generated_extract_and_reference_load_cleanly(tmp_path):
    frame = generate.claims(3000)
    assert frame.height == 3000
    frame.write_csv(tmp_path / "claims.csv")
    generate.ptp_file(tmp_path / "ccipra-v322r0-f1.txt", 5000)
    generate.mue_file(tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", 500)
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        results = import_paths(con, [tmp_path / "ccipra-v322r0-f1.txt",
                                     tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"],
                               parts=1)                       # the synthetic release is one part file
    assert all(r.rows_bad == 0 and r.rows_loaded > 0 for r in results)
    summary = pipeline.run_audit([tmp_path / "claims.csv"], db=db, out=tmp_path / "out", data_quality=False)
    assert (summary["read"], summary["quarantined"]) == (3000, 0)
    assert summary["reference"]["starter_set_used"] is False
    assert {"DUP-001", "PTP-002", "TIME-001"} <= set(summary["findings"]["by_rule"])


baseline_spec = importlib.util.spec_from_file_location("bench_baseline_pandas", REPO / "bench" / "baseline_pandas.py")
baseline = importlib.util.module_from_spec(baseline_spec)
baseline_spec.loader.exec_module(baseline)


def _visit(claim: str, patient: str, profile: str, dos: str, *lines: tuple) -> list[dict]:
    """Claim lines of one visit: (code, modifiers, units, minutes) each."""
    return [{"claim_id": claim, "line_number": n, "patient_id": patient, "rendering_npi": "1234567893",
             "billing_npi": "1234567893", "payer": "MEDICARE PART B" if profile == "medicare" else "AETNA",
             "profile": profile, "date_of_service": dt.date.fromisoformat(dos), "procedure_code": code,
             **{f"modifier_{i + 1}": (mods + ["", "", "", ""])[i] for i in range(4)},
             "units": units, "minutes": minutes, "charge_amount": 50.0, "allowed_amount": 40.0, "place_of_service": "11"}
            for n, (code, mods, units, minutes) in enumerate(lines, start=1)]


def test_the_pandas_baseline_finds_exactly_the_audits_ptp_mue_time_and_duplicate_findings(tmp_path):
    """bench/baseline_pandas.py is a second implementation of ncci_ptp, mue, units_time and duplicates (pandas):
    on a generated extract plus hand-made visits for the branches the generator never makes (indicator 0,
    anatomic, E/M and column-2 modifiers, 59 on the column-1 line by placement, an MUE line edit, fewer
    than 8 minutes, §20.2 splits with tied leftovers (billing-rules.md §3.1), a duplicate with its modifiers
    in another order) both find the same findings."""
    data = tmp_path / "data"
    data.mkdir()
    made = [
        *_visit("X1", "PX1", "medicare", "2026-03-02", ("J1100", [], 1, None), ("J7030", ["59"], 3, None)),  # MI 0; MUE line
        *_visit("X2", "PX2", "medicare", "2026-03-02", ("A4550", ["LT"], 1, None), ("A4556", ["RT"], 1, None)),
        *_visit("X3", "PX3", "medicare", "2026-03-02", ("A4550", ["RT"], 1, None), ("A4556", ["RT"], 1, None)),
        *_visit("X4", "PX4", "medicare", "2026-03-02", ("A4550", ["25"], 1, None), ("A4556", [], 1, None)),
        *_visit("X5", "PX5", "medicare", "2026-03-02", ("A4550", [], 1, None), ("A4556", ["79"], 1, None)),
        *_visit("X6", "PX6", "medicare", "2026-03-02", ("A4550", ["59"], 1, None), ("A4556", [], 1, None)),
        *_visit("X7", "PX7", "commercial_cpt", "2026-03-02", ("A4550", ["XS"], 1, None), ("A4556", [], 1, None)),
        *_visit("X8", "PX8", "medicare", "2026-03-02", ("97110", ["GP"], 1, 5)),                        # TIME-003
        *_visit("X9", "PX9", "medicare", "2026-03-02", ("97110", ["GP"], 2, 22), ("97112", ["GP"], 2, 22),
                ("97140", ["GP"], 1, 25)),                                                                 # TIME-002 tie
        *_visit("X10", "PX10", "medicare", "2026-03-02", ("97110", ["GP"], 1, 22), ("97112", ["GP"], 1, 22),
                ("97140", ["GP"], 2, 22)),                                          # equal leftovers: either way
        *_visit("X11", "PX11", "medicare", "2026-03-02", ("J1100", ["59", "RT"], 1, None), ("J1100", ["RT", "59"], 1, None)),
        *_visit("X12", "PX12", "medicare", "2026-03-02", ("J1100", ["RT"], 1, None), ("J1100", ["LT"], 1, None)),
    ]
    frame = generate.claims(20_000)
    pl.concat([frame, pl.DataFrame(made, schema=frame.schema)]).write_csv(data / "claims.csv")
    generate.ptp_file(data / "ccipra-v322r0-f1.txt", 5000)
    with (data / "ccipra-v322r0-f1.txt").open("ab") as fh:
        fh.write(b"J1100\tJ7030\t\t20000101\t*\t0\ttest pair\r\nA4550\tA4556\t\t20000101\t*\t1\ttest pair\r\n")
    generate.mue_file(data / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", 500)
    with (data / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv").open("ab") as fh:
        fh.write(b"J7030,2,1 Line Edit,Clinical: Data\r\n")
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        import_paths(con, [data / "ccipra-v322r0-f1.txt", data / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"],
                     parts=1)
    pipeline.run_audit([data / "claims.csv"], db=db, out=tmp_path / "out", data_quality=False)
    ours = pl.read_parquet(tmp_path / "out" / "findings.parquet") \
        .filter(pl.col("family").is_in(baseline.FAMILIES))
    rows = ours.height
    ours = {(r, c, int(n), k) for r, c, n, k in ours.select(baseline.KEY).iter_rows()}
    found, _ = baseline.check(baseline.read(data))
    theirs = {(r, c, int(n), None if k is None or k != k else k)          # pandas' missing value is None or NaN
              for f in found.values() for r, c, n, k in f[baseline.KEY].itertuples(index=False)}
    assert theirs == ours and sum(len(f) for f in found.values()) == rows == len(ours)    # and no repeats
    assert {r for r, *_ in ours} >= {"PTP-001", "PTP-002", "PTP-003", "MUE-001", "MUE-002", "TIME-001", "TIME-002",
                                     "TIME-003", "TIME-004", "TIME-005", "TIME-006", "TIME-007", "DUP-001"}
    made_ptp = {(r, c, n) for r, c, n, k in ours if c.startswith("X") and r.startswith("PTP")}
    assert made_ptp == {("PTP-001", "X1", 2), ("PTP-003", "X2", 2), ("PTP-002", "X3", 2), ("PTP-003", "X4", 2),
                        ("PTP-003", "X5", 2), ("PTP-003", "X6", 2), ("PTP-002", "X7", 2)}
    assert {(r, c, n) for r, c, n, _ in ours if c in ("X8", "X9", "X10")} == {
        ("TIME-003", "X8", 1), ("TIME-002", "X9", 1), ("TIME-002", "X9", 2)}
    assert {(r, c, n) for r, c, n, _ in ours if c in ("X11", "X12")} == {("DUP-001", "X11", 2)}   # modifiers in any order


ratio_spec = importlib.util.spec_from_file_location("bench_ratio", REPO / "bench" / "ratio.py")
ratio = importlib.util.module_from_spec(ratio_spec)
ratio_spec.loader.exec_module(ratio)


def _result(lines: int, ingest: float, units_time: float, outputs: float, coverage: float) -> dict:
    return {"read": lines, "wall": ingest + units_time + outputs, "plain_read": ingest / 2,
            "timings": {"ingest": ingest, "data_quality": 1.0, "data_quality_validate": 0.8, "reference": 0.1,
                        "rules": units_time, "rule_files": {"units_time": units_time, "coverage": coverage},
                        "outputs": outputs, "total": ingest + 1.1 + units_time + outputs}}


def test_the_size_comparison_names_a_stage_that_grows_faster_than_the_lines(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "bench"))        # ratio.py takes bench/run.py's stage list
    small = _result(1_000_000, ingest=5.0, units_time=2.0, outputs=15.0, coverage=0.01)
    large = _result(10_000_000, ingest=50.0, units_time=25.0, outputs=20.0,   # units_time x12.5: over 10 x 1.2
                    coverage=0.3)
    lines, rows = ratio.compare(small, large)
    assert lines == 10
    flagged = {name for name, _, _, _, superlinear in rows if superlinear}
    assert flagged == {"  rules: units_time", "rules"}
    by_name = {name: r for name, _, _, r, _ in rows}
    assert by_name["ingest"] == 10
    assert by_name["outputs (findings, reports, summary)"] == 20 / 15     # a fixed cost: far below the lines
    assert by_name["  rules: coverage"] == 30.0                           # but too short to call growth
    large["timings"]["rule_files"]["units_time"] = large["timings"]["rules"] = 24.0   # x12: within the slack
    assert not any(r[4] for r in ratio.compare(small, large)[1])
