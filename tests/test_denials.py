"""835 remittances: the real files load; remit lines link to claim lines; the denial analysis measures
each rule against what the payer did."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.x12.remits835 import read_835
from remits import write_835  # tests/remits.py

REMITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "x12" / "835"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "claims.csv"


@pytest.mark.parametrize("path", sorted(REMITS.iterdir()), ids=lambda p: p.name)
def test_every_real_835_loads(path):
    tables = read_835(path)
    assert tables["claims"].height >= 1
    assert tables["claims"]["patient_control_number"].null_count() == 0


def test_the_documented_counts():
    big = read_835(REMITS / "tastypackets_profee-multiple.edi")
    assert (big["claims"].height, big["lines"].height, big["adjustments"].height) == (468, 1560, 624)
    denied = read_835(REMITS / "pyx12_835_mult_loops.txt")
    assert denied["claims"]["status"].to_list() == ["4"]
    assert sorted(denied["adjustments"].select(c=pl.format("{}-{}", "group", "reason"))["c"]) == \
        ["CO-16", "OA-A7", "OA-A7"]
    assert denied["remarks"]["code"].to_list() == ["N14", "N14", "N14"]
    assert str(denied["lines"]["service_date"][0]) == "2003-11-29"            # DTM*150
    managed = read_835(REMITS / "managed-care.835")
    by_level = managed["adjustments"].group_by("level").len().sort("level")
    assert by_level.rows() == [("claim", 2), ("line", 3)]                    # claim-level CAS kept apart
    multi = read_835(REMITS / "secondary-payment.835")["adjustments"]        # CAS*PR*1*150.00**2*70.00
    two = multi.filter(pl.col("group") == "PR").sort("reason")
    assert two.select("reason", pl.col("amount").cast(pl.Float64)).rows() == [("1", 150.0), ("2", 70.0)]
    negative = read_835(REMITS / "cob-contractural-adjustment.835")["adjustments"]
    assert -9.0 in negative["amount"].cast(pl.Float64).to_list()             # negative adjustments kept


def test_svc_without_a_procedure_code_is_reported_not_fatal():
    tables = read_835(REMITS / "tertiary-payment.835")
    line = tables["lines"].row(0, named=True)
    assert line["procedure_code"] is None and "SVC01 has no procedure code" in line["issue"]
    assert str(line["paid"]) == "1766.50"


def test_remits_link_to_lines_and_measure_the_rules(tmp_path):
    plain = pipeline.run_audit([SAMPLE], db=tmp_path / "a.duckdb", out=tmp_path / "a", data_quality=False)
    findings = pl.read_parquet(tmp_path / "a" / "findings.parquet")
    lines = pl.read_csv(SAMPLE, infer_schema=False)
    flagged = lines.filter(pl.col("claim_id") == "CLM001302").sort("line_number").to_dicts()   # TIME-001 on line 1
    clean_id = (lines.filter(~pl.col("claim_id").is_in(findings["claim_id"].implode())
                             & pl.col("date_of_service").str.contains(r"^\d{4}-"))["claim_id"].sort()[0])
    clean = lines.filter(pl.col("claim_id") == clean_id).sort("line_number").to_dicts()
    write_835([("CLM001302", [(flagged[0], "0", "CO*151"), (flagged[1], f"{float(flagged[1]['charge_amount']):.2f}", "")]),
            (clean_id, [(clean[0], "0", "CO*16")]),
            ("NOT-IN-RUN", [(clean[0], "0", "CO*16")])], tmp_path / "remit.835")

    summary = pipeline.run_audit([SAMPLE, tmp_path / "remit.835"], db=tmp_path / "w.duckdb", out=tmp_path / "out",
                                 data_quality=False)
    assert summary["read"] == plain["read"]                         # remits are not claim lines
    d = summary["denials"]
    assert (d["remit_lines"], d["matched"], d["denied_lines"]) == (4, 3, 3)
    assert d["matches_by_rule"]["code+modifiers+dos+charge"] == 3
    assert d["unmatched"] == {"no claim with this patient control number in the run": 1}
    assert d["preventable_dollars"] == float(flagged[0]["charge_amount"])
    assert (d["denials_not_predicted"], d["denials_not_predicted_dollars"]) == (1, float(clean[0]["charge_amount"]))
    time_rule = next(r for r in d["rules"] if r["rule_id"] == "TIME-001")
    assert (time_rule["findings_with_remit"], time_rule["denied"], time_rule["denied_as_predicted"],
            time_rule["precision"]) == (1, 1, 1, 1.0)
    assert {"carc": "CO-151", "level": "line", "adjustments": 1, "dollars": float(flagged[0]["charge_amount"])} \
        in d["adjustments_by_carc"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Denials: what the payer did (835)" in html and "Preventable" in html


def test_secondary_payers_and_reversals_link_and_are_not_denials(tmp_path):
    """Each CLP is one adjudication: a secondary payer's remit and a reversal + correction link to the
    same claim line as the primary's; the line's verdict is its latest primary adjudication."""
    plain = pipeline.run_audit([SAMPLE], db=tmp_path / "a.duckdb", out=tmp_path / "a", data_quality=False)
    findings = pl.read_parquet(tmp_path / "a" / "findings.parquet")
    lines = pl.read_csv(SAMPLE, infer_schema=False)
    flagged = lines.filter(pl.col("claim_id") == "CLM001302").sort("line_number").to_dicts()[0]   # TIME-001
    clean_id = (lines.filter(~pl.col("claim_id").is_in(findings["claim_id"].implode())
                             & pl.col("date_of_service").str.contains(r"^\d{4}-"))["claim_id"].sort()[0])
    clean = lines.filter(pl.col("claim_id") == clean_id).sort("line_number").to_dicts()[0]
    full = f"{float(clean['charge_amount']):.2f}"
    # April 1: the primary denies both lines; April 15: the secondary pays nothing on the flagged one;
    # May 1: the primary reverses the clean line's denial and pays it in full
    write_835([("CLM001302", [(flagged, "0", "CO*151")]), (clean_id, [(clean, "0", "CO*16")])],
           tmp_path / "primary.835", paid_on="20260401")
    write_835([("CLM001302", [(flagged, "0", "OA*23")], "2")], tmp_path / "secondary.835", paid_on="20260415")
    write_835([(clean_id, [(clean, "0", "")], "22"), (clean_id, [(clean, full, "")], "1")],
           tmp_path / "corrected.835", paid_on="20260501")

    summary = pipeline.run_audit([SAMPLE, tmp_path / "primary.835", tmp_path / "secondary.835",
                                  tmp_path / "corrected.835"], db=tmp_path / "w.duckdb", out=tmp_path / "out",
                                 data_quality=False)
    assert summary["read"] == plain["read"]
    d = summary["denials"]
    assert (d["remit_lines"], d["matched"]) == (5, 5)                  # nothing left as "no line of the claim fits"
    assert d["unmatched"] == {}
    assert d["lines_by_role"] == {"primary": 3, "reversal": 1, "secondary": 1}
    assert d["superseded_lines"] == 1                                   # the clean line's first denial
    assert (d["denied_lines"], d["denied_dollars"]) == (1, float(flagged["charge_amount"]))
    assert d["preventable_dollars"] == float(flagged["charge_amount"])
    assert (d["denials_not_predicted"], d["denials_not_predicted_dollars"]) == (0, 0.0)
    time_rule = next(r for r in d["rules"] if r["rule_id"] == "TIME-001")
    assert (time_rule["findings_with_remit"], time_rule["denied"], time_rule["denied_as_predicted"]) == (1, 1, 1)
    # the reversal's negative charge cannot match on charge: it links on code + date of service
    assert d["matches_by_rule"]["code+dos"] == 1
    html = (tmp_path / "out" / "report.html").read_text()
    assert "primary 3, reversal 1, secondary 1" in html and "1 earlier primary lines superseded" in html


def test_only_remittances_is_a_clear_error(tmp_path):
    from claimaudit.errors import InputError

    with pytest.raises(InputError, match="only 835 remittances given"):
        pipeline.run_audit([REMITS / "managed-care.835"], db=tmp_path / "w.duckdb", out=tmp_path / "out")
