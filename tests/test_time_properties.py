"""Property tests: the SQL time rules against a tiny pure-Python reference of CMS §20.2 and the CPT rule.

The reference is written independently of the SQL: for TIME-002 it enumerates every allocation §20.2
permits (floors, then the remaining units to any choice of codes whose leftovers are not smaller than
a passed-over code's) and asks whether the billed split is one of them.
"""

from __future__ import annotations

from itertools import combinations

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import audit_lines, line, mue_fixture, ptp_fixture

TIMED = ["97110", "97112", "97116", "97140", "97530", "97535", "97035", "97032"]


def units(total: int) -> int:
    return 0 if total < 8 else (total + 7) // 15


def valid_cms_splits(minutes: dict[str, int]) -> set[tuple[int, ...]]:
    codes = sorted(minutes)
    base = {c: minutes[c] // 15 for c in codes}
    rest = units(sum(minutes.values())) - sum(base.values())
    splits = set()
    for chosen in combinations(codes, rest):
        others = [minutes[c] % 15 for c in codes if c not in chosen]
        if all(minutes[c] % 15 >= max(others, default=0) for c in chosen):
            splits.add(tuple(base[c] + (c in chosen) for c in codes))
    return splits


def expected_cms(day: list[tuple[str, int, int]]) -> set[tuple[str, int]]:
    """(rule, line) pairs; the day is billed as lines 1..n in order, day-level findings sit on line 1."""
    minutes = {c: m for c, m, _ in day}
    billed = {c: u for c, _, u in day}
    line_of = {c: i for i, (c, _, _) in enumerate(day, start=1)}
    total, n = sum(minutes.values()), units(sum(minutes.values()))
    if total < 8:
        return {("TIME-003", i) for i in line_of.values()}
    if sum(billed.values()) > n:
        return {("TIME-001", 1)}
    if sum(billed.values()) < n:
        return {("TIME-006", 1)}
    codes = sorted(minutes)
    splits = valid_cms_splits(minutes)
    most = {c: max(s[codes.index(c)] for s in splits) for c in codes}
    base = {c: minutes[c] // 15 for c in codes}
    without_one = [minutes[d] % 15 for d in codes if billed[d] <= base[d]]
    # a code is wrong when below its full-unit floor, above anything §20.2 could give it, or when it got
    # a +1 that a code without one has a larger remainder for (billing-rules.md §3.1's acceptance test)
    return {("TIME-002", line_of[c]) for c in codes
            if billed[c] < base[c] or billed[c] > most[c]
            or (billed[c] == base[c] + 1 and any(r > minutes[c] % 15 for r in without_one))}


def expected_cpt(day: list[tuple[str, int, int]]) -> set[tuple[str, int]]:
    return {("TIME-004", i) for i, (_, m, u) in enumerate(day, start=1) if u > units(m)}


@st.composite
def day_strategy(draw):
    """A day of timed lines (one per code). Units are drawn where the rules are sharp: a split §20.2
    permits, the same split with one unit moved between codes (right total, maybe wrong split, ties
    included), the CPT per-code units, or anything."""
    codes = draw(st.lists(st.sampled_from(TIMED), min_size=1, max_size=4, unique=True))
    # leftovers from a short list make ties (equal leftover minutes) common
    minute = st.one_of(st.integers(1, 60),
                       st.builds(lambda k, r: 15 * k + r, st.integers(1, 3), st.sampled_from([3, 7, 8, 12])))
    minutes = {c: draw(minute) for c in codes}
    mode = draw(st.sampled_from(["cms", "cms_moved", "cms_moved", "cms_moved", "cpt", "any"]))
    splits = sorted(s for s in valid_cms_splits(minutes) if min(s) > 0)
    if mode.startswith("cms") and splits:
        billed = dict(zip(sorted(codes), draw(st.sampled_from(splits)), strict=True))
        if mode == "cms_moved" and len(codes) > 1:
            give, take = draw(st.permutations(sorted(codes)))[:2]
            if billed[give] > 1:
                billed[give] -= 1
                billed[take] += 1
    elif mode == "cpt" and all(units(m) > 0 for m in minutes.values()):
        billed = {c: units(m) for c, m in minutes.items()}
    else:
        billed = {c: draw(st.integers(1, 4)) for c in codes}
    return [(c, minutes[c], billed[c]) for c in codes]


# No shrinking: each example is a whole audit, and a failure prints its days anyway.
@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(days=st.lists(day_strategy(), min_size=1, max_size=60))
def test_sql_time_rules_match_the_reference(tmp_path_factory, days):
    tmp = tmp_path_factory.mktemp("prop")
    refs = (ptp_fixture(tmp, ["00001\t00002\t\t20000101\t*\t1"]), mue_fixture(tmp, ["00001,1,1 Line Edit"]))
    rows, want = [], {}
    for i, day in enumerate(days):
        for profile in ("medicare", "commercial_cpt"):
            patient = f"P{i}-{profile}"
            for j, (code, minutes, billed) in enumerate(day, start=1):
                rows.append(line(f"{patient}", j, code, "GP", units=billed, minutes=minutes, patient=patient,
                                 profile=profile, dos="2024-06-04"))
            want[patient] = expected_cms(day) if profile == "medicare" else expected_cpt(day)
    findings = audit_lines(tmp, *rows, reference=refs)
    got = {p: set() for p in want}
    for r in findings.iter_rows(named=True):
        got[r["patient_id"]].add((r["rule_id"], r["line_number"]))
    assert got == want, {p: (got[p], want[p]) for p in want if got[p] != want[p]}


def test_a_plus_one_for_a_smaller_remainder_than_a_code_without_one_is_flagged(tmp_path):
    """97110 22 min, 97112 22 min, 97140 25 min: T = 69, N = 5, floors 1 + 1 + 1, R = 2. §20.2 gives the
    two remaining units to 97140 (remainder 10) and to either of the tied 97110/97112 (7). Billed
    97110 x2, 97112 x2, 97140 x1: the total is right, but both +1s went to a remainder of 7 while 97140,
    with 10, got none. billing-rules.md §3.1: every code that got a +1 must have a remainder at least as
    large as every code that did not: TIME-002 on 97110 and 97112. (Each alone could have the +1, so a
    check of each code against the splits §20.2 permits passes both.)"""
    day = [("97110", 22, 2), ("97112", 22, 2), ("97140", 25, 1)]
    assert expected_cms(day) == {("TIME-002", 1), ("TIME-002", 2)}
    refs = (ptp_fixture(tmp_path, ["00001\t00002\t\t20000101\t*\t1"]), mue_fixture(tmp_path, ["00001,1,1 Line Edit"]))
    findings = audit_lines(tmp_path, *[line("C1", j, code, "GP", units=u, minutes=m, dos="2024-06-04")
                                       for j, (code, m, u) in enumerate(day, start=1)], reference=refs)
    assert {(r["rule_id"], r["line_number"]) for r in findings.iter_rows(named=True)} == expected_cms(day)
    row = findings.sort("line_number").row(0, named=True)
    assert (row["expected"], row["actual"]) == ("97110 x2 (22 min)", "97110 x2")
    assert row["recommended_action"] == "Re-split the units as 97110 x2 (22 min), 97140 x2 (25 min), 97112 x1 (22 min)."
