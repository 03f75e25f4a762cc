"""Worked test vectors TV-01 ... TV-20 of shared/domain/billing-rules.md §8.

Each test asserts the complete set of findings of its day (rule, claim, line): nothing missing and
nothing extra. Reference rows are the vectors' FIXTURE rows in the CMS layouts, so no test depends
on the starter set or on a live CMS file. KX thresholds are the bundled table (data/reference).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import audit_lines, keys, line, mue_fixture, ptp_fixture

PTP_ROWS = [
    "97140\t97530\t\t20000101\t*\t1\tMutually exclusive procedures",     # TV-08/09 (real-like)
    "29581\t97140\t\t20180101\t20211231\t0",                              # TV-10
    "29581\t97140\t\t20220101\t*\t1",                                     # TV-10
    "97161\t97530\t\t20200101\t20200101\t9",                              # TV-11
    "98941\t97140\t\t20000101\t*\t1",                                     # TV-18c
]
MUE_ROWS = ["97035,2,3 Date of Service Edit: Clinical", "TSTL1,1,1 Line Edit", "97161,1,2 Date of Service Edit: Policy"]


@pytest.fixture
def run(tmp_path):
    refs = (ptp_fixture(tmp_path, PTP_ROWS), mue_fixture(tmp_path, MUE_ROWS))
    counter = iter(range(1000))

    def _run(*rows):
        return audit_lines(tmp_path, *rows, reference=refs, name=f"tv{next(counter)}")
    return _run


def both(profile_rows):
    """The same lines under the medicare and the commercial_cpt profile."""
    return {p: [r.replace(",medicare,", f",{p},") for r in profile_rows] for p in ("medicare", "commercial_cpt")}


D = "2024-03-05"


def test_tv01_cms_example_1_billed_correctly(run):
    assert keys(run(line("C1", 1, "97112", "GP", units=2, minutes=24, dos=D),
                    line("C1", 2, "97110", "GP", units=1, minutes=23, dos=D))) == set()


def test_tv02_example_1_over_billed_under_both_profiles(run):
    rows = both([line("C1", 1, "97112", "GP", units=2, minutes=24, dos=D),
                 line("C1", 2, "97110", "GP", units=2, minutes=23, dos=D)])
    f = run(*rows["medicare"])
    assert keys(f) == {("TIME-001", "C1", 1)}
    action = f.filter(f["rule_id"] == "TIME-001")["recommended_action"].item()
    assert "97112 x2 (24 min), 97110 x1 (23 min)" in action
    assert f["expected"].item() == "3 timed units (47 minutes)" and f["actual"].item() == "4 timed units"
    assert keys(run(*rows["commercial_cpt"])) == set()


def test_tv03_short_service_earns_unit_by_pooling_not_per_code(run):
    rows = both([line("C1", 1, "97110", "GP", units=2, minutes=33, dos=D),
                 line("C1", 2, "97140", "GP", units=1, minutes=7, dos=D)])
    assert keys(run(*rows["medicare"])) == set()
    assert keys(run(*rows["commercial_cpt"])) == {("TIME-004", "C1", 2)}


def test_tv04_smallest_leftover_gets_nothing(run):
    rows = both([line("C1", i, code, "GP", minutes=m, dos=D)
                 for i, (code, m) in enumerate([("97110", 18), ("97140", 13), ("97116", 10), ("97035", 8)], 1)])
    f = run(*rows["medicare"])
    assert keys(f) == {("TIME-001", "C1", 1)}
    action = f["recommended_action"].item()
    assert "97110 x1 (18 min), 97116 x1 (10 min), 97140 x1 (13 min)" in action and "97035" not in action
    assert keys(run(*rows["commercial_cpt"])) == set()


def test_tv05_three_seven_minute_services(run):
    rows = both([line("C1", i, code, "GP", minutes=7, dos=D) for i, code in enumerate(["97112", "97110", "97140"], 1)])
    assert keys(run(*rows["medicare"])) == {("TIME-001", "C1", 1)}
    assert keys(run(*rows["commercial_cpt"])) == {("TIME-004", "C1", 1), ("TIME-004", "C1", 2), ("TIME-004", "C1", 3)}


def test_tv06_single_timed_service_under_8_minutes(run):
    f = run(line("C1", 1, "97110", "GP", minutes=7, dos=D), line("C1", 2, "G0283", "GP", minutes=15, dos=D))
    assert keys(f) == {("TIME-003", "C1", 1)}


@pytest.mark.parametrize("rows, expected", [
    ([("97140", 2, 35), ("97035", 1, 7)], set()),                               # (a)
    ([("97140", 3, 35), ("97035", 1, 7)], {("TIME-001", "C1", 1)}),             # (b)
    ([("97112", 1, 24), ("97110", 2, 23)], {("TIME-002", "C1", 2)}),            # (c)
])
def test_tv07_mac_example_allocation(run, rows, expected):
    f = run(*[line("C1", i, c, "GP", units=u, minutes=m, dos=D) for i, (c, u, m) in enumerate(rows, 1)])
    assert keys(f) == expected


def test_tv08_ptp_indicator_1_without_modifier(run):
    f = run(line("C1", 1, "97140", "GP", minutes=15, dos="2024-06-04"),
            line("C1", 2, "97530", "GP", minutes=15, dos="2024-06-04"))
    assert keys(f) == {("PTP-002", "C1", 2)}
    row = f.row(0, named=True)
    assert row["related_code"] == "97140" and row["related_lines"] == ["C1:1", "C1:2"]
    assert row["reference"].startswith("NCCI PTP practitioner v322r0 row 97140/97530 eff 2000-01-01 del * MI 1")
    assert row["predicted_carc"] == "CO-97 (M15/N20) or CO-236"


@pytest.mark.parametrize("mods_97140, mods_97530, profile, expected", [
    (["GP"], ["GP", "59"], "medicare", "PTP-003"),                # TV-09
    (["GP", "59"], ["GP"], "medicare", "PTP-003"),                # 9b: either line (DOS >= 2019-07-01)
    (["GP", "59"], ["GP"], "commercial_cpt", "PTP-002"),          # 9b: column 2 only
    (["GP"], ["GP", "XU"], "medicare", "PTP-003"),                # 9c
    (["GP"], ["GP", "76"], "medicare", "PTP-002"),                # 9d: 76 is not NCCI-associated
    (["GP", "KX"], ["GP", "22"], "medicare", "PTP-002"),          # KX, 22 never bypass
    (["GP", "RT"], ["GP", "LT"], "medicare", "PTP-003"),          # different anatomic sites
    (["GP", "RT"], ["GP", "RT"], "medicare", "PTP-002"),          # the same site separates nothing
])
def test_tv09_bypass_placement_by_profile(run, mods_97140, mods_97530, profile, expected):
    f = run(line("C1", 1, "97140", *mods_97140, minutes=15, dos="2024-06-04", profile=profile),
            line("C1", 2, "97530", *mods_97530, minutes=15, dos="2024-06-04", profile=profile))
    assert keys(f) == {(expected, "C1", 2)}


def test_either_line_placement_starts_2019_07_01(run):
    f = run(line("C1", 1, "97140", "GP", "59", minutes=15, dos="2019-06-28"),
            line("C1", 2, "97530", "GP", minutes=15, dos="2019-06-28"))
    assert keys(f) == {("PTP-002", "C1", 2)}


@pytest.mark.parametrize("dos, expected", [
    ("2021-12-30", "PTP-001"), ("2021-12-31", "PTP-001"),    # deletion date is the last day in force
    ("2022-01-01", "PTP-003"), ("2022-01-03", "PTP-003"),
])
def test_tv10_indicator_history_selected_by_date(run, dos, expected):
    f = run(line("C1", 1, "29581", "GP", dos=dos), line("C1", 2, "97140", "GP", "59", minutes=15, dos=dos))
    assert keys(f) == {(expected, "C1", 2)}
    assert f["related_code"].item() == "29581"


def test_tv11_retroactively_deleted_edit_never_fires(run):
    f = run(line("C1", 1, "97161", "GP", dos="2020-01-15"), line("C1", 2, "97530", "GP", minutes=15, dos="2020-01-15"))
    assert keys(f) == set()


def test_tv12_mue_mai3_split_lines_do_not_help(run):
    f = run(line("C1", 1, "97035", "GP", units=2, minutes=25, dos=D, allowed="20.00"),
            line("C2", 1, "97035", "GP", "59", units=1, minutes=15, dos=D, allowed="10.00"))
    assert keys(f) == {("MUE-002", "C1", 1)}
    row = f.row(0, named=True)
    assert row["related_lines"] == ["C1:1", "C2:1"] and float(row["amount_at_risk"]) == 30.0   # both lines at risk
    assert (row["expected"], row["actual"]) == ("<= 2 units per day", "3 units on 2 line(s) that day")
    assert "MUE practitioner 2000-01-01 97035 = 2 (3 Date of Service Edit: Clinical" in row["reference"]


@pytest.mark.parametrize("rows, expected", [
    ([("TSTL1", [], 1), ("TSTL1", ["59"], 1)], set()),                                          # (a)
    ([("TSTL1", [], 2)], {("MUE-001", "C1", 1)}),                                               # (b)
    # (c): the doc lists MUE-002; two evaluation lines the same day are also TIME-005 (per-session code)
    ([("97161", ["GP"], 1), ("97161", ["GP", "59"], 1)], {("MUE-002", "C1", 1), ("TIME-005", "C1", 1)}),
    ([("97161", ["GP"], 2)], {("MUE-002", "C1", 1), ("TIME-005", "C1", 1)}),                    # (d)
])
def test_tv13_mai1_line_edit_vs_mai2_day_edit(run, rows, expected):
    f = run(*[line("C1", i, c, *m, units=u, dos=D) for i, (c, m, u) in enumerate(rows, 1)])
    assert keys(f) == expected


def test_tv14_missing_therapy_modifier(run):
    f = run(line("C1", 1, "97110", units=1, minutes=12, dos=D))
    assert keys(f) == {("MOD-001", "C1", 1)}
    assert f["predicted_carc"].item() == "CO-4"
    assert keys(run(line("C1", 1, "97110", units=1, minutes=12, dos=D, profile="commercial_cpt"))) == set()


@pytest.mark.parametrize("code, mods, expected", [
    ("97165", ["GP"], "MOD-003"),           # (a)
    ("97110", ["GP", "GO"], "MOD-002"),     # (b): two therapy modifiers is MOD-002 alone
    ("92507", [], "MOD-001"),               # (c)
    ("97161", ["GO", "GN"], "MOD-002"),     # discipline code with two modifiers: not also MOD-003
])
def test_tv15_discipline_and_modifier_count(run, code, mods, expected):
    minutes = 15 if code == "97110" else ""
    assert keys(run(line("C1", 1, code, *mods, minutes=minutes, dos=D))) == {(expected, "C1", 1)}


@pytest.mark.parametrize("code, mods, expected", [
    ("97110", ["CQ"], {"MOD-004", "MOD-001"}),      # (b)
    ("97110", ["GP", "CQ"], set()),                 # (c)
    ("97530", ["GO", "CQ"], {"MOD-004"}),           # (e)
    ("97530", ["GP", "CO"], {"MOD-004"}),
])
def test_tv16_cq_co_pairing(run, code, mods, expected):
    f = run(line("C1", 1, code, *mods, units=2, minutes=25, dos="2023-05-10"))
    assert {k[0] for k in keys(f)} == expected


@pytest.mark.parametrize("case, row, expected", [
    # (a) the PTA alone furnished 25 minutes of 97110, billed GP x2 without CQ
    ("a", line("C1", 1, "97110", "GP", units=2, minutes=25, assistant=25, dos="2023-05-10"), {"MOD-005"}),
    ("c", line("C1", 1, "97110", "GP", "CQ", units=2, minutes=25, assistant=25, dos="2023-05-10"), set()),
    # (d) PT 14 minutes, PTA 1 minute of a single unit: de minimis (1/15 is not more than 10%)
    ("d", line("C1", 1, "97110", "GP", units=1, minutes=15, assistant=1, dos="2023-05-10"), set()),
    ("OT without CO", line("C1", 1, "97530", "GO", units=1, minutes=15, assistant=15, dos="2023-05-10"), {"MOD-005"}),
    ("SLP: no assistant modifier", line("C1", 1, "92507", "GN", assistant=20, minutes=30, dos="2023-05-10"), set()),
    ("before 2020", line("C1", 1, "97110", "GP", units=2, minutes=25, assistant=25, dos="2019-12-30"), set()),
])
def test_tv16_assistant_de_minimis(run, case, row, expected):
    f = run(row)
    assert {k[0] for k in keys(f)} == expected, case
    if expected:
        (hit,) = f.to_dicts()
        assert float(hit["amount_at_risk"]) == 7.5                           # 15% of $50.00: paid at 85%
        assert hit["predicted_carc"].startswith("none at submission")


def test_tv16_assistant_before_2022_is_not_yet_a_payment_cut(run):
    f = run(line("C1", 1, "97110", "GP", units=2, minutes=25, assistant=25, dos="2021-06-01"))
    assert keys(f) == {("MOD-005", "C1", 1)} and float(f["amount_at_risk"].item()) == 0.0


def _ytd(tmp_path, *rows) -> Path:
    path = tmp_path / "ytd.csv"
    path.write_text("patient_id,year,pt_slp_amount,ot_amount\n" + "\n".join(rows) + "\n")
    return path


def test_tv17_kx_threshold_2025_and_its_2026_variant(tmp_path):
    ytd = _ytd(tmp_path, "P1,2025,2380.00,500.00", "P1,2026,2380.00,500.00")
    for year, expected in (("2025", {("MOD-006", "C1", 1)}), ("2026", set())):  # $2,410 in 2025; $2,480 in 2026
        rows = [line("C1", 1, "97110", "GP", units=2, minutes=30, allowed="60.00", dos=f"{year}-06-02"),
                line("C2", 1, "97530", "GO", units=1, minutes=15, allowed="60.00", dos=f"{year}-06-02")]  # OT: $560
        f = audit_lines(tmp_path, *rows, name=f"kx{year}", therapy_ytd=ytd)
        assert keys(f) == expected, year
    (hit,) = audit_lines(tmp_path, line("C1", 1, "97110", "GP", units=2, minutes=30, allowed="60.00", dos="2025-06-02"),
                         name="kx-detail", therapy_ytd=ytd).to_dicts()
    assert hit["expected"] == "KX (2025 PT+SLP therapy total $2,440.00 > KX threshold $2,410.00)"
    assert hit["actual"] == "no KX" and float(hit["amount_at_risk"]) == 60.0 and hit["related_code"] == "PT+SLP"
    assert "(from a prior year-to-date $2,380.00)" in hit["message"]
    with_kx = audit_lines(tmp_path, line("C1", 1, "97110", "GP", "KX", units=2, minutes=30, allowed="60.00",
                                         dos="2025-06-02"), name="kx-kx", therapy_ytd=ytd)
    assert keys(with_kx) == set()


def test_tv18_medicare_chiropractic(run):
    # (a) CMT without AT
    assert keys(run(line("C1", 1, "98941", dos=D, discipline="DC"))) == {("MOD-007", "C1", 1)}
    for mod in ("AT", "GA", "GZ"):
        assert keys(run(line("C1", 1, "98941", mod, dos=D, discipline="DC"))) == set(), mod
    # (b) 97140 from a chiropractor is not covered by Medicare (COV-001); the fixture's 98941/97140 edit
    # (TV-18c) also applies on this day, as it would on a real claim
    f = run(line("C1", 1, "98941", "AT", dos=D, discipline="DC"),
            line("C1", 2, "97140", "GP", minutes=10, dos=D, discipline="DC"))
    assert keys(f) == {("COV-001", "C1", 2), ("PTP-002", "C1", 2)}
    assert keys(run(line("C1", 1, "97140", "GP", "GY", minutes=10, dos=D, discipline="DC"))) == set()


def test_tv19_97014_is_g0283_under_medicare(run):
    assert keys(run(line("C1", 1, "97014", "GP", dos=D))) == {("MOD-009", "C1", 1)}
    assert keys(run(line("C1", 1, "97014", "GP", dos=D, profile="commercial_cpt"))) == set()


def test_tv18c_commercial_cmt_with_manual_therapy(run):
    base = dict(dos=D, profile="commercial_cpt")
    f = run(line("C1", 1, "98941", **base), line("C1", 2, "97140", minutes=15, **base))
    assert keys(f) == {("PTP-002", "C1", 2)}
    f = run(line("C1", 1, "98941", **base), line("C1", 2, "97140", "XS", minutes=15, **base))
    assert keys(f) == {("PTP-003", "C1", 2)}


def test_tv20_methods_diverge_both_ways(run):
    rows = both([line("C1", 1, "97110", "GP", minutes=10, dos=D), line("C1", 2, "97112", "GP", minutes=10, dos=D)])
    assert keys(run(*rows["medicare"])) == {("TIME-001", "C1", 1)}
    assert keys(run(*rows["commercial_cpt"])) == set()
    rows = both([line("C1", 1, "97110", "GP", units=2, minutes=22, dos=D),
                 line("C1", 2, "97140", "GP", units=1, minutes=22, dos=D)])
    assert keys(run(*rows["medicare"])) == set()                     # tie 7 vs 7: either code may take it
    assert keys(run(*rows["commercial_cpt"])) == {("TIME-004", "C1", 1)}
