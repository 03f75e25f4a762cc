"""Rule catalogue v2 (issue 15) beyond the worked vectors: hand-computed KX edge cases, unchecked lines,
reference data as data (thresholds, the CMS therapy code list, taxonomies), and incremental runs that
agree with a full run."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.refdata import import_paths
from claimaudit.warehouse import connect
from conftest import FULL_HEADER, audit_lines, keys, line, write_csv

X12 = Path(__file__).resolve().parents[2] / "shared" / "data" / "x12" / "837p"


def kx(claim, dos, amount, *mods, patient="P1", npi="1234567893", code="97110", profile="medicare"):
    """A one-unit therapy line of ``amount`` allowed dollars (GP unless other modifiers are given)."""
    return line(claim, 1, code, *(mods or ("GP",)), minutes=15, allowed=f"{amount:.2f}", dos=dos, patient=patient,
                npi=npi, profile=profile)


def test_a_running_total_landing_exactly_on_the_threshold_is_not_over_it(tmp_path):
    rows = [kx("A", "2025-03-03", 2000.00), kx("B", "2025-03-10", 410.00)]         # 2,410.00 = the 2025 threshold
    assert keys(audit_lines(tmp_path, *rows, name="at")) == set()
    rows.append(kx("C", "2025-03-17", 0.01))
    assert keys(audit_lines(tmp_path, *rows, name="over")) == {("MOD-006", "C", 1)}


def test_totals_restart_each_calendar_year(tmp_path):
    rows = [kx("A", "2025-12-29", 2400.00), kx("B", "2026-01-05", 100.00), kx("C", "2025-12-30", 20.00)]
    f = audit_lines(tmp_path, *rows)
    assert keys(f) == {("MOD-006", "C", 1)}                                         # 2,420 > 2,410 in 2025 only


def test_a_beneficiary_is_totalled_across_rendering_npis_and_buckets_apart(tmp_path):
    rows = [kx("A", "2025-04-01", 2000.00, npi="1234567893"),
            kx("B", "2025-04-02", 500.00, npi="1245319599"),                        # another therapist
            kx("C", "2025-04-03", 2450.00, "GO", code="97530"),                      # OT: its own bucket
            kx("D", "2025-04-04", 100.00, "GN", code="92507")]                       # SLP counts with PT
    f = audit_lines(tmp_path, *rows)
    assert keys(f) == {("MOD-006", "B", 1), ("MOD-006", "C", 1), ("MOD-006", "D", 1)}
    assert dict(zip(f["claim_id"], f["related_code"], strict=True)) == {"B": "PT+SLP", "C": "OT", "D": "PT+SLP"}


def test_lines_with_kx_count_toward_the_total_and_commercial_lines_do_not(tmp_path):
    rows = [kx("A", "2025-05-01", 2300.00, "GP", "KX"),                             # counted, not flagged
            kx("B", "2025-05-02", 900.00, profile="commercial_cpt"),               # not Medicare: not counted
            kx("C", "2025-05-03", 150.00)]                                          # 2,450 > 2,410
    f = audit_lines(tmp_path, *rows)
    assert keys(f, "MOD-006") == {("MOD-006", "C", 1)}


def test_a_prior_year_to_date_amount_starts_the_total(tmp_path):
    ytd = tmp_path / "ytd.csv"
    ytd.write_text("patient_id,year,pt_slp_amount,ot_amount\nP1,2025,2400.00,\nP2,2025,,100.00\n")
    f = audit_lines(tmp_path, kx("A", "2025-02-03", 20.00), kx("B", "2025-02-03", 20.00, patient="P2"), therapy_ytd=ytd)
    assert keys(f) == {("MOD-006", "A", 1)}
    bad = tmp_path / "bad-ytd.csv"
    bad.write_text("patient_id,year,pt_slp_amount,ot_amount\nP1,2025,2400.005,\n")
    with pytest.raises(Exception, match=r"line 2: pt_slp_amount is not an amount with at most two decimals"):
        audit_lines(tmp_path, kx("A", "2025-02-03", 20.00), therapy_ytd=bad, name="bad")


def test_the_targeted_review_threshold_flags_only_the_first_line_past_it(tmp_path):
    rows = [kx("A", "2025-06-02", 2900.00, "GP", "KX"), kx("B", "2025-06-09", 150.00, "GP", "KX"),
            kx("C", "2025-06-16", 150.00, "GP", "KX")]
    f = audit_lines(tmp_path, *rows)
    assert keys(f) == {("MOD-010", "B", 1)}
    (hit,) = f.to_dicts()
    assert hit["severity"] == "info" and hit["amount_at_risk"] is None and "$3,050.00" in hit["message"]


def test_a_year_without_a_threshold_is_unchecked_not_clean(tmp_path):
    f = audit_lines(tmp_path, kx("A", "2017-06-01", 5000.00))
    assert keys(f) == {("REF-001", "A", 1)}
    assert (f["related_code"].item(), f["actual"].item()) == ("kx", "no KX threshold loaded for 2017")


def test_imported_thresholds_extend_the_bundled_ones(tmp_path):
    table = tmp_path / "therapy-thresholds-2027.csv"
    table.write_text("year,kx_pt_slp,kx_ot,tmr,source\n2027,2550.00,2550.00,3000.00,CY 2027 PFS final rule\n")
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        (result,) = import_paths(con, [table])
    assert (result.kind, result.version, result.rows_loaded) == ("thresholds", "2027-2027", 1)
    path = write_csv(tmp_path / "x.csv", FULL_HEADER.split(",provider")[0],
                     kx("A", "2027-02-01", 2500.00), kx("B", "2027-02-02", 100.00))
    summary = pipeline.run_audit([path], db=db, out=tmp_path / "out", data_quality=False)
    f = pl.read_parquet(tmp_path / "out" / "findings.parquet")
    assert keys(f, "MOD-006", "REF-001") == {("MOD-006", "B", 1)} and "CY 2027 PFS final rule" in f["reference"].item()
    assert [v["note"] for v in summary["reference"]["versions"] if v["kind"] == "thresholds"] == [
        "KX/TMR thresholds: data/reference/therapy_thresholds.csv and imported CY 2027 PFS final rule"]


def test_the_cms_therapy_code_list_replaces_the_starter_flags(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["CY 2026 Therapy Code List"])
    ws.append(["HCPCS Code", "Long Descriptor", "Therapy Designation"])
    ws.append(["97110", "Therapeutic exercise", "Sometimes Therapy"])         # (not what the list says: a test)
    ws.append(["97750", "Physical performance test", "Always Therapy"])
    ws.append(["9775", "a bad code", "Always Therapy"])
    wb.save(tmp_path / "2026-therapy-code-list.xlsx")
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        (result,) = import_paths(con, [tmp_path / "2026-therapy-code-list.xlsx"])
    assert (result.kind, result.version, result.rows_loaded, result.rows_bad) == ("therapy", "2026", 2, 1)
    path = write_csv(tmp_path / "x.csv", FULL_HEADER.split(",provider")[0],
                     line("A", 1, "97110", minutes=15, dos="2026-03-02"), line("B", 1, "97750", minutes=15, dos="2026-03-02"))
    summary = pipeline.run_audit([path], db=db, out=tmp_path / "out", data_quality=False)
    f = pl.read_parquet(tmp_path / "out" / "findings.parquet")
    assert keys(f, "MOD-001") == {("MOD-001", "B", 1)}                           # the list decides, not the starter
    (therapy,) = [v for v in summary["reference"]["versions"] if v["kind"] == "therapy"]
    assert (therapy["version"], therapy["is_starter"]) == ("2026", False)


def test_lines_a_rule_cannot_judge_are_counted_as_unchecked(tmp_path):
    rows = [line("A", 1, "97140", "GP", minutes=15, dos="2026-03-02", discipline="", assistant="", charge="80.00",
                 allowed="61.37"),
            line("C", 1, "97140", "GP", minutes=15, dos="2026-03-04", discipline="", assistant="", charge="25.10"),
            line("B", 1, "97150", "GP", dos="2026-03-03", discipline="PT", assistant=5, charge="40.00")]  # untimed
    audit_lines(tmp_path, *rows)
    db = tmp_path / "u.duckdb"
    summary = pipeline.run_audit([write_csv(tmp_path / "y.csv", FULL_HEADER, *rows)], db=db, out=tmp_path / "u",
                                 data_quality=False)
    causes = {(c["family"], c["reason"]): (c["lines"], c["dollars"], c["first_date"], c["last_date"])
              for c in summary["unchecked"]}
    # the dollars not verified: each line's allowed amount, else its charge
    assert causes[("COV-001", "no provider discipline on the line (chiropractic coverage needs it)")] == (
        2, 86.47, "2026-03-02", "2026-03-04")
    assert causes[("MOD-005", "assistant minutes on an untimed service without its total minutes")] == (
        1, 40.0, "2026-03-03", "2026-03-03")
    # a warehouse from before unchecked lines carried their amounts gets them from the run's lines
    from claimaudit import coverage
    from claimaudit.warehouse import connect

    with connect(db) as con:
        con.execute("UPDATE unchecked_lines SET line_amount = NULL")
        con.execute("DELETE FROM schema_migrations WHERE name = '013_unchecked_amounts.sql'")
    with connect(db) as con:
        assert coverage.causes(con, summary["run_id"]) == summary["unchecked"]


def test_837_taxonomies_give_the_discipline_and_the_chiropractic_rules_fire(tmp_path):
    claims = []
    for n, (code, mods, prv) in enumerate((("98941", "", "PRV*PE*PXC*111N00000X~"),
                                           ("97140", ":GP", "PRV*PE*PXC*111N00000X~")), 1):
        claims.append(f"HL*{n + 1}*1*22*0~SBR*P*18*******MB~NM1*IL*1*PATIENT*SYN****MI*M{n:05d}~"
                      f"NM1*PR*2*MEDICARE PART B*****PI*12345~CLM*C{n}*100***11:B:1*Y*A*Y*Y~HI*ABK:M9901~"
                      f"NM1*82*1*CHIRO*SYN****XX*1234567893~{prv}LX*1~SV1*HC:{code}{mods}*100*UN*1***1~"
                      f"DTP*472*D8*20260302~")
    body = ("ST*837*0001*005010X222A1~BHT*0019*00*1*20260301*0932*CH~HL*1**20*1~"
            "NM1*85*2*SYNTHETIC CHIROPRACTIC*****XX*1234567893~N3*1 MAIN ST~N4*ANYTOWN*MD*20705~" + "".join(claims))
    src = tmp_path / "chiro.837"
    src.write_text("ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260301*0932*^*00501*"
                   "000000001*0*T*:~GS*HC*S*R*20260301*0932*1*X*005010X222A1~" + body
                   + f"SE*{body.count('~') + 1}*0001~GE*1*1~IEA*1*000000001~")
    pipeline.run_audit([src], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    f = pl.read_parquet(tmp_path / "out" / "findings.parquet")
    assert keys(f, "MOD-007", "COV-001") == {("MOD-007", "C1", 1), ("COV-001", "C2", 1)}
    # the shared TR3 example 6: Medicare chiropractic 98940 without AT (no taxonomy: COV-001 unchecked)
    summary = pipeline.run_audit([X12 / "demo.example6.837"], db=tmp_path / "w2.duckdb", out=tmp_path / "out2",
                                 data_quality=False)
    assert keys(pl.read_parquet(tmp_path / "out2" / "findings.parquet"), "MOD-007") == {("MOD-007", "125WILL", 1)}
    assert any(c["family"] == "COV-001" for c in summary["unchecked"])


def test_incremental_landing_runs_total_like_one_audit(tmp_path):
    """The same lines in two landing files, the later dates first: exactly the MOD-006 findings of one
    audit over all lines (the KX total reads the whole beneficiary-year of the ledger)."""
    early = [kx("A", "2025-02-03", 1200.00), kx("B", "2025-02-10", 1000.00, npi="1245319599")]
    late = [kx("C", "2025-03-03", 250.00), kx("D", "2025-03-10", 100.00), kx("E", "2025-04-07", 50.00, "GP", "KX")]
    header = FULL_HEADER.split(",provider")[0]
    whole = audit_lines(tmp_path, *early, *late, name="whole")
    expected = keys(whole, "MOD-006", "MOD-010")
    assert expected == {("MOD-006", "C", 1), ("MOD-006", "D", 1)}
    land, db = tmp_path / "landing", tmp_path / "l.duckdb"
    land.mkdir()
    write_csv(land / "1-late.csv", header, *late)
    pipeline.run_landing(land, db=db, out=tmp_path / "r1", scope="clinic", data_quality=False, settle_seconds=0)
    assert keys(pl.read_parquet(tmp_path / "r1" / "findings.parquet"), "MOD-006") == set()   # 400 alone: under
    write_csv(land / "2-early.csv", header, *early)
    second = pipeline.run_landing(land, db=db, out=tmp_path / "r2", scope="clinic", data_quality=False,
                                  settle_seconds=0)
    assert second["landing"]["days_audited"] == 5                 # the early days, and every later day of the year
    assert keys(pl.read_parquet(tmp_path / "r2" / "findings.parquet"), "MOD-006", "MOD-010") == expected
    # and in date order: the later file's days alone are audited, their totals read the earlier ledger days
    shutil.rmtree(land)
    land.mkdir()
    write_csv(land / "1-early.csv", header, *early)
    pipeline.run_landing(land, db=db, out=tmp_path / "r3", scope="other", data_quality=False, settle_seconds=0)
    write_csv(land / "2-late.csv", header, *late)
    fourth = pipeline.run_landing(land, db=db, out=tmp_path / "r4", scope="other", data_quality=False,
                                  settle_seconds=0)
    assert fourth["landing"]["days_audited"] == 3
    assert keys(pl.read_parquet(tmp_path / "r4" / "findings.parquet"), "MOD-006", "MOD-010") == expected
