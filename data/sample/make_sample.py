"""Generate the bundled sample extract (claims.csv) and its expected findings (expected_findings.csv).

A synthetic outpatient PT/OT clinic: 4 therapists, ~60 patients, Medicare Part B and three
commercial payers, January-September 2026. Clean visits are billed correctly (CMS §20.2 allocation
for Medicare, the CPT per-code method for commercial payers, therapy modifiers present, no starter
PTP pair); then a set of error visits, each taken from a worked vector of
shared/domain/billing-rules.md §8, carries exactly the finding written beside it. Every expected
finding was checked by hand against the vector it cites. Deterministic: re-running rewrites the same
files. No real patient data: ids are made up.

    python data/sample/make_sample.py
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(20261122)

HEADER = ["claim_id", "line_number", "patient_id", "rendering_npi", "billing_npi", "payer", "profile",
          "date_of_service", "procedure_code", "modifier_1", "modifier_2", "modifier_3", "modifier_4", "units",
          "minutes", "charge_amount", "allowed_amount", "place_of_service", "diagnosis_codes",
          "provider_discipline", "assistant_minutes"]
FEE = {"97110": 52, "97112": 55, "97116": 48, "97140": 50, "97530": 58, "97535": 54, "97035": 30,
       "97161": 160, "97162": 175, "97163": 190, "97165": 165, "97166": 180, "97167": 195, "G0283": 28,
       "97014": 28, "29581": 90, "97164": 110, "98941": 45}
PAYERS = [("MEDICARE PART B", "medicare")] * 3 + [("BLUE CROSS PPO", "commercial_cpt"),
                                                  ("AETNA", "commercial_cpt"), ("UNITED HEALTHCARE", "commercial_cpt")]
DX = ["M54.50", "M25.561", "M75.101", "S83.511A", "M17.11", "G81.91", "M62.81", "R26.89", "I69.351"]


def npi(base9: str) -> str:
    """A 10-digit NPI with a valid Luhn check digit (prefix 80840)."""
    digits = [int(c) for c in "80840" + base9]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return base9 + str((10 - total % 10) % 10)


THERAPISTS = [(npi("164738291"), "PT"), (npi("152849302"), "PT"), (npi("178230456"), "OT"),
              (npi("119384756"), "OT")]
BILLING_NPI = npi("130945872")
PT_COMBOS = [["97110", "97112"], ["97110", "97140"], ["97110", "97112", "97140"], ["97530", "97110"],
             ["97110", "97116"], ["97112", "97035"], ["97110"], ["97140", "97112", "97110"]]
OT_COMBOS = [["97530", "97535"], ["97530", "97110"], ["97535", "97112"], ["97530"]]
TIMED = {"97110", "97112", "97116", "97140", "97530", "97535", "97035"}

rows: list[dict] = []
expected: list[dict] = []
claim_seq = 1000


def units_cms(minutes: dict[str, int]) -> dict[str, int] | None:
    """CMS §20.2: N from the day's total, full-unit floors, then the largest remainders."""
    total = sum(minutes.values())
    n = 0 if total < 8 else (total + 7) // 15
    units = {c: m // 15 for c, m in minutes.items()}
    rest = n - sum(units.values())
    by_rem = sorted(minutes, key=lambda c: -(minutes[c] % 15))
    rems = [minutes[c] % 15 for c in by_rem]
    if rest and rest < len(rems) and rems[rest - 1] == rems[rest]:
        return None                                   # a tie at the cut: keep the sample unambiguous
    for c in by_rem[:rest]:
        units[c] += 1
    return units if all(u > 0 for u in units.values()) else None


def units_cpt(minutes: dict[str, int]) -> dict[str, int]:
    return {c: 0 if m < 8 else (m + 7) // 15 for c, m in minutes.items()}


def add_claim(patient: str, therapist: tuple[str, str], payer: tuple[str, str], dos: date,
              lines: list[tuple], note: str | None = None) -> str:
    """lines: (code, modifiers, units, minutes[, assistant minutes]) -> rows; returns the claim id."""
    global claim_seq
    claim_seq += 1
    claim_id = f"CLM{claim_seq:06d}"
    dx = ";".join(rng.sample(DX, 2))
    for i, (code, mods, units, minutes, *assistant) in enumerate(lines, start=1):
        mods = list(mods) + [""] * (4 - len(mods))
        charge = FEE.get(code, 40) * units
        medicare = payer[1] == "medicare"
        allowed = round(charge * (0.62 if medicare else 0.8), 2) if (medicare or rng.random() < 0.7) else ""
        rows.append({"claim_id": claim_id, "line_number": i, "patient_id": patient, "rendering_npi": therapist[0],
                     "billing_npi": BILLING_NPI, "payer": payer[0], "profile": payer[1],
                     "date_of_service": dos.isoformat(), "procedure_code": code, "modifier_1": mods[0],
                     "modifier_2": mods[1], "modifier_3": mods[2], "modifier_4": mods[3], "units": units,
                     "minutes": "" if minutes is None else minutes, "charge_amount": f"{charge:.2f}",
                     "allowed_amount": allowed if allowed == "" else f"{allowed:.2f}",
                     "place_of_service": "11", "diagnosis_codes": dx, "provider_discipline": therapist[1],
                     "assistant_minutes": assistant[0] if assistant else ""})
    return claim_id


def expect(rule: str, claim_id: str, line: int, related_code: str = "", note: str = "") -> None:
    expected.append({"rule_id": rule, "claim_id": claim_id, "line_number": line, "related_code": related_code,
                     "note": note})


# ---------------------------------------------------------------- clean visits
start = date(2026, 1, 5)
patients = [f"PT{n:05d}" for n in range(10001, 10061)]
for p_index, patient in enumerate(patients):
    therapist = THERAPISTS[p_index % 4]
    payer = PAYERS[p_index % len(PAYERS)]
    discipline_mod = "GP" if therapist[1] == "PT" else "GO"
    dos = start + timedelta(days=rng.randrange(0, 200))
    n_visits = rng.randint(3, 7)
    for visit in range(n_visits):
        while dos.weekday() >= 5:
            dos += timedelta(days=1)
        combo = rng.choice(PT_COMBOS if therapist[1] == "PT" else OT_COMBOS)
        if visit == 0:                       # first visit: evaluation (untimed) + one timed code
            combo = ["97530"] if therapist[1] == "OT" else rng.choice([["97110"], ["97530"], ["97112"]])
        while True:
            minutes = {c: rng.randint(8, 34) for c in combo}
            units = units_cms(minutes) if payer[1] == "medicare" else units_cpt(minutes)
            if units and all(u > 0 for u in units.values()):
                break
        lines = []
        if visit == 0:
            eval_code = rng.choice(["97161", "97162", "97163"] if therapist[1] == "PT" else ["97165", "97166", "97167"])
            lines.append((eval_code, [discipline_mod], 1, None))
        lines += [(c, [discipline_mod], units[c], minutes[c]) for c in combo]
        if payer[1] == "medicare" and therapist[1] == "PT" and rng.random() < 0.15:
            lines.append(("G0283", ["GP"], 1, None))
        add_claim(patient, therapist, payer, dos, lines)
        dos += timedelta(days=rng.choice([2, 3, 7, 7, 14]))

# ---------------------------------------------------------------- error visits (one vector each)
MCR, BCBS = ("MEDICARE PART B", "medicare"), ("BLUE CROSS PPO", "commercial_cpt")
PTX, OTX = THERAPISTS[0], THERAPISTS[2]
d = date(2026, 8, 3)


def err_day(offset: int) -> date:
    day = d + timedelta(days=offset)
    return day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)


c = add_claim("PT20001", PTX, MCR, err_day(0), [("97112", ["GP"], 2, 24), ("97110", ["GP"], 2, 23)])
expect("TIME-001", c, 1, note="TV-02: 4 timed units billed, 47 minutes support 3")
c = add_claim("PT20002", PTX, MCR, err_day(1), [("97112", ["GP"], 1, 24), ("97110", ["GP"], 2, 23)])
expect("TIME-002", c, 2, note="TV-07c: total 3 is right but the extra unit belongs to 97112 (9 > 8)")
c = add_claim("PT20003", PTX, MCR, err_day(2), [("97110", ["GP"], 1, 7), ("G0283", ["GP"], 1, 15)])
expect("TIME-003", c, 1, note="TV-06: 7 timed minutes (untimed G0283 minutes do not count)")
c = add_claim("PT20004", PTX, BCBS, err_day(3), [("97110", ["GP"], 2, 33), ("97140", ["GP"], 1, 7)])
expect("TIME-004", c, 2, note="TV-03 under the CPT per-code profile: 7 minutes of 97140 earn 0 units")
c = add_claim("PT20005", PTX, MCR, err_day(4), [("97161", ["GP"], 2, None), ("97110", ["GP"], 1, 15)])
expect("TIME-005", c, 1, note="TV-13d: evaluation is untimed, 1 unit per day")
c = add_claim("PT20006", PTX, MCR, err_day(7), [("97110", ["GP"], 1, 38)])
expect("TIME-006", c, 1, note="38 minutes support 3 units, 1 billed (possible under-billing)")
c = add_claim("PT20007", PTX, MCR, err_day(8), [("97110", ["GP"], 1, None), ("97112", ["GP"], 1, 15)])
expect("TIME-007", c, 1, note="97110 has no minutes: the day's time checks are skipped")
c = add_claim("PT20008", PTX, MCR, err_day(9), [("97140", ["GP"], 1, 15), ("97530", ["GP"], 1, 15)])
expect("PTP-002", c, 2, "97140", note="TV-08: 97140/97530 indicator 1, no modifier")
c = add_claim("PT20009", PTX, MCR, err_day(10), [("97140", ["GP"], 1, 15), ("97530", ["GP", "59"], 1, 15)])
expect("PTP-003", c, 2, "97140", note="TV-09: bypassed with 59: documentation must support it")
c = add_claim("PT20010", PTX, MCR, date(2021, 11, 15), [("29581", ["GP"], 1, None), ("97140", ["GP", "59"], 1, 15)])
expect("PTP-001", c, 2, "29581", note="TV-10: 29581/97140 indicator 0 in 2021, the 59 cannot bypass it")
ca = add_claim("PT20011", PTX, MCR, err_day(11), [("97140", ["GP"], 1, 15)])
cb = add_claim("PT20011", PTX, MCR, err_day(11), [("97530", ["GP"], 1, 15)])
expect("PTP-002", cb, 1, "97140", note="a PTP pair split over two claims of the same day is still a pair")
ca = add_claim("PT20012", PTX, MCR, err_day(14), [("97035", ["GP"], 2, 25)])
cb = add_claim("PT20012", PTX, MCR, err_day(14), [("97035", ["GP", "59"], 1, 15)])
expect("MUE-002", ca, 1, note="TV-12: 97035 MUE 2 (MAI 3), 3 units summed across two claims")
c = add_claim("PT20013", PTX, MCR, err_day(15), [("97110", [], 1, 12)])
expect("MOD-001", c, 1, note="TV-14: always-therapy code without GP/GO/GN")
c = add_claim("PT20014", PTX, MCR, err_day(16), [("97110", ["GP", "GO"], 1, 15)])
expect("MOD-002", c, 1, note="TV-15b: two therapy modifiers on one line")
c = add_claim("PT20015", OTX, MCR, err_day(17), [("97165", ["GP"], 1, None), ("97530", ["GO"], 1, 15)])
expect("MOD-003", c, 1, note="TV-15a: OT evaluation 97165 needs GO")
c = add_claim("PT20016", OTX, MCR, err_day(18), [("97530", ["GO", "CQ"], 1, 15)])
expect("MOD-004", c, 1, note="TV-16e: OT service with CQ (should be CO)")
c = add_claim("PT20017", PTX, MCR, err_day(21), [("97140", ["GP", "59", "XU"], 1, 15)])
expect("MOD-008", c, 1, note="59 and an X modifier on the same line")
ca = add_claim("PT20018", PTX, MCR, err_day(22), [("97110", ["GP"], 1, 15)])
cb = add_claim("PT20018", PTX, MCR, err_day(22), [("97110", ["GP"], 1, 15)])
expect("DUP-001", cb, 1, note="the same service billed again on a second claim")
c = add_claim("PT20019", PTX, MCR, date(1999, 8, 24), [("97110", ["GP"], 1, 15)])
expect("REF-001", c, 1, "mue", note="DOS keyed as 1999 (typo): no MUE file covers it (PTP rows carry history "
       "back to 1996, so PTP is checked)")
expect("REF-001", c, 1, "kx", note="the same line: no KX threshold is known for 1999 (unchecked for MOD-006)")

expect("DQ-DOS-RANGE", c, 1, "", note="data quality (warning): DOS before 2000")

# data-quality suite: two warnings (the lines are still audited) and one blocking failure
c = add_claim("PT20021", ("1234567890", "PT"), MCR, err_day(24), [("97110", ["GP"], 1, 15)])
expect("DQ-NPI-CHECK-DIGIT", c, 1, note="data quality (warning): NPI check digit is wrong (1234567893 would be valid)")
c = add_claim("PT20022", PTX, MCR, err_day(25), [("97112", ["GP"], 1, 15)])
for r in rows:
    if r["claim_id"] == c:
        r["place_of_service"] = "85"
expect("DQ-POS-CODE", c, 1, note="data quality (warning): 85 is not a CMS place-of-service code")
dq_blocked = add_claim("PT20023", PTX, MCR, err_day(28), [("97110", ["GP"], 1, 15), ("AB123", ["GP"], 1, None)])

# ---------------------------------------------------------------- rows the loader must quarantine
bad = add_claim("PT20020", PTX, MCR, err_day(23), [("97110", ["GP"], 1, 15), ("478331", ["GP"], 1, 15),
                                                     ("97112", ["GP"], 1, 15), ("97140", ["GP"], 1, 15)])
for r in rows:
    if r["claim_id"] == bad:
        if r["line_number"] == 1:
            r["patient_id"] = ""                                  # missing_required:patient_id
        if r["line_number"] == 3:
            r["date_of_service"] = "2026-08-32"                   # bad_date:date_of_service
        if r["line_number"] == 4:
            r["units"] = 0                                        # non_positive_units

# ---------------------------------------------------------------- catalogue v2: Medicare policies
c = add_claim("PT20024", PTX, MCR, err_day(29), [("97110", ["GP"], 2, 25, 25)])
expect("MOD-005", c, 1, note="TV-16a: the PT assistant furnished all 25 minutes and the line has no CQ (paid at 85%: "
       "15% at risk)")
CHIRO = (npi("187654329"), "DC")
c = add_claim("PT20025", CHIRO, MCR, err_day(30), [("98941", [], 1, None)])
expect("MOD-007", c, 1, note="TV-18a: chiropractic manipulation without AT is maintenance care")
c = add_claim("PT20026", CHIRO, MCR, err_day(31), [("98941", ["AT"], 1, None), ("97110", ["GP"], 1, 10)])
expect("COV-001", c, 2, note="TV-18b: Medicare covers only 98940-98942 from a chiropractor")
c = add_claim("PT20027", PTX, MCR, err_day(32), [("97014", ["GP"], 1, None)])
expect("MOD-009", c, 1, note="TV-19: Medicare does not recognize 97014 (bill G0283)")
# an intensive post-surgical course: 2 hours a week, $272.80 allowed a visit, past the 2026 KX threshold
# ($2,480) on the 10th visit and past the $3,000 targeted-review threshold on the 11th
day, total = date(2026, 3, 2), 0.0
for visit in range(12):
    lines = [("97110", ["GP", "KX"] if visit >= 9 else ["GP"], 4, 60),
             ("97530", ["GP", "KX"] if visit >= 10 else ["GP"], 4, 60)]
    c = add_claim("PT20028", PTX, MCR, day, lines)
    for n, (code, mods, units, _) in enumerate(lines, start=1):
        before, total = total, total + round(FEE[code] * units * 0.62, 2)
        if total > 2480 and "KX" not in mods:
            expect("MOD-006", c, n, "PT+SLP", note=f"the 2026 PT+SLP therapy total reaches ${total:,.2f} (> $2,480) "
                   "and the line has no KX")
        if before <= 3000 < total:
            expect("MOD-010", c, n, "PT+SLP", note=f"the 2026 PT+SLP total passes $3,000 (${total:,.2f}): "
                   "eligible for targeted medical review")
    day += timedelta(days=7)

rows.sort(key=lambda r: (r["date_of_service"], r["claim_id"], r["line_number"]))
with (HERE / "claims.csv").open("w", newline="") as fh:
    writer = csv.DictWriter(fh, HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
with (HERE / "expected_findings.csv").open("w", newline="") as fh:
    writer = csv.DictWriter(fh, ["rule_id", "claim_id", "line_number", "related_code", "note"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(expected, key=lambda e: (e["claim_id"], e["line_number"], e["rule_id"])))
print(f"{len(rows)} lines, {len({(r['patient_id'], r['date_of_service']) for r in rows})} visits, "
      f"{len(expected)} expected findings")
