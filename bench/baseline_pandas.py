"""Baseline: claimaudit's PTP, MUE and units/time rules written in pandas, finding the same findings.

    python bench/baseline_pandas.py --work DIR [--keys FILE]   # DIR/data from bench/generate.py

Vectorized pandas (no row-wise apply), so it is a fair yardstick rather than a strawman: it reads the
extract and the CMS-layout reference files, then finds every finding of sql/rules/ncci_ptp.sql
(PTP-001..003), mue.sql (MUE-001, MUE-002) and units_time.sql (TIME-001..007) by the same rules: the
payer profiles of data/profiles (NCCI modifier placement, time method), the code classes of
data/reference/code_classes.csv, the same day (patient + rendering NPI + DOS), the same grain and the
same first line of a group. DUP-001 (duplicates.sql) too, as an independent check of that rule only
(it is not in the timed PTP + MUE + time yardstick). Written as a pandas engineer would for speed: each family takes only the
columns it needs, and groups first, then fetches the lines of the flagged groups only (as the SQL
does). tests/test_bench_generator.py checks on generated and hand-made visits that it finds exactly
what the audit finds. ``--keys`` writes each finding's (rule_id, claim_id, line_number,
related_code), which bench/run.py compares with the audit's findings.parquet. What it leaves out:
the findings' text and dollars, and the reference versions by date (one PTP and one MUE file, in
force for every DOS, as bench/generate.py writes them); rule files run by claimaudit write both.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parent.parent
DAY = ["patient_id", "rendering_npi", "date_of_service"]
MODS = ["modifier_1", "modifier_2", "modifier_3", "modifier_4"]
DISTINCT = {"59", "XE", "XS", "XP", "XU"}
ANATOMIC = {"E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "TA", "T1", "T2",
            "T3", "T4", "T5", "T6", "T7", "T8", "T9", "LT", "RT", "LC", "LD", "RC", "LM", "RI"}
EM_EITHER = {"24", "25", "57"}
COL2_OTHER = {"27", "58", "78", "79", "91"}
KEY = ["rule_id", "claim_id", "line_number", "related_code"]
FAMILIES = ["ncci_ptp", "mue", "units_time", "duplicates"]          # the audit's families this baseline finds


def profiles() -> pd.DataFrame:
    rows = []
    for path in sorted((REPO / "data" / "profiles").glob("*.yaml")):
        p = yaml.safe_load(path.read_text(encoding="utf-8"))
        rows.append({"profile": p["name"], "time_method": p["time_method"],
                     "either_line": p["ptp"]["modifier_placement"] == "either_line",
                     "either_line_from": pd.Timestamp(p["ptp"]["either_line_from"] or "0001-01-01")})
    return pd.DataFrame(rows)


def first_lines(lines: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The first line (claim_id, line_number order) of each group of ``lines``."""
    return lines.sort_values(["claim_id", "line_number"]).drop_duplicates(by)[by + ["claim_id", "line_number"]]


def has_any(frame: pd.DataFrame, columns: list[str], wanted: set[str]) -> pd.Series:
    return frame[columns].isin(wanted).any(axis=1)


def ptp(lines: pd.DataFrame, edits: pd.DataFrame, prof: pd.DataFrame) -> pd.DataFrame:
    c2 = lines[DAY + ["claim_id", "line_number", "procedure_code"]].rename(columns={"procedure_code": "column_2"})
    c1 = lines[DAY + ["claim_id", "line_number", "procedure_code"]]
    c1.columns = DAY + ["c1_claim", "c1_line", "column_1"]
    pairs = c2.merge(c1, on=DAY).merge(edits, on=["column_1", "column_2"])     # a day's line pairs, then the edits
    pairs = pairs[(pairs["date_of_service"] >= pairs["eff"]) & (pairs["date_of_service"] <= pairs["dele"])]
    # several rows of one pair in force on the same day: the newest (ncci_ptp.sql's QUALIFY)
    pairs = pairs.sort_values(["eff", "source_line"], ascending=[False, True]).drop_duplicates(
        ["claim_id", "line_number", "c1_claim", "c1_line"])
    line_mods = lines[["claim_id", "line_number", "profile", *MODS]]
    pairs = pairs.merge(line_mods, on=["claim_id", "line_number"]).merge(
        line_mods.drop(columns="profile").set_axis(["c1_claim", "c1_line", *[f"c1_{m}" for m in MODS]], axis=1),
        on=["c1_claim", "c1_line"]).merge(prof, on="profile")
    c1_mods = [f"c1_{m}" for m in MODS]
    either = pairs["either_line"] & (pairs["date_of_service"] >= pairs["either_line_from"])
    anatomic_differ = (has_any(pairs, MODS, ANATOMIC) & has_any(pairs, c1_mods, ANATOMIC)
                       & ~pd.concat([pairs[a].isin(ANATOMIC) & (pairs[a] == pairs[b]) for a in MODS for b in c1_mods],
                                    axis=1).any(axis=1))
    bypassed = (has_any(pairs, MODS, DISTINCT) | (either & has_any(pairs, c1_mods, DISTINCT)) | anatomic_differ
                | has_any(pairs, MODS + c1_mods, EM_EITHER) | has_any(pairs, MODS, COL2_OTHER))
    rule = pd.Series("PTP-002", index=pairs.index).where(~bypassed, "PTP-003").where(pairs["mi"] != "0", "PTP-001")
    hits = pairs.assign(rule_id=rule, related_code=pairs["column_1"])
    return hits[KEY].drop_duplicates()


def mue(lines: pd.DataFrame, edits: pd.DataFrame) -> pd.DataFrame:
    with_mue = lines[DAY + ["claim_id", "line_number", "procedure_code", "units"]].merge(
        edits, left_on="procedure_code", right_on="code")
    line_edits = with_mue[(with_mue["mai"] == "1") & (with_mue["units"] > with_mue["value"])]
    dos = with_mue[with_mue["mai"].isin(["2", "3"])]
    sums = dos.groupby(DAY + ["procedure_code"], as_index=False).agg(units=("units", "sum"), value=("value", "first"))
    over = sums[sums["units"] > sums["value"]][DAY + ["procedure_code"]]
    day_edits = first_lines(dos.merge(over, on=DAY + ["procedure_code"]), DAY + ["procedure_code"])
    return pd.concat([line_edits.assign(rule_id="MUE-001"), day_edits.assign(rule_id="MUE-002")]) \
        .assign(related_code=None)[KEY]


def units_time(lines: pd.DataFrame, classes: pd.DataFrame, prof: pd.DataFrame) -> pd.DataFrame:
    day = DAY + ["profile"]
    classed = lines[day + ["claim_id", "line_number", "procedure_code", "units", "minutes"]].merge(
        classes, on="procedure_code", how="left")
    timed = classed[classed["code_class"] == "timed_15"]
    t007 = timed[timed["minutes"].isna()].assign(rule_id="TIME-007")

    codes = timed.assign(unchecked=timed["minutes"].isna()).groupby(day + ["procedure_code"], as_index=False).agg(
        unchecked=("unchecked", "any"), minutes=("minutes", "sum"), units=("units", "sum"))
    codes["base"], codes["leftover"] = codes["minutes"] // 15, codes["minutes"] % 15
    one, floor = codes["units"] == codes["base"] + 1, codes["units"] == codes["base"]
    codes = codes.assign(off_range=(codes["units"] < codes["base"]) | (codes["units"] > codes["base"] + 1),
                         leftover_with_one=codes["leftover"].where(one), leftover_at_floor=codes["leftover"].where(floor),
                         leftover_without_one=codes["leftover"].where(codes["units"] <= codes["base"]))
    days = codes.groupby(day, as_index=False).agg(
        unchecked=("unchecked", "any"), total=("minutes", "sum"), billed=("units", "sum"), base_sum=("base", "sum"),
        off_range=("off_range", "any"), min_with_one=("leftover_with_one", "min"),
        max_at_floor=("leftover_at_floor", "max"), max_without_one=("leftover_without_one", "max"))
    days = days[~days["unchecked"]].merge(prof[["profile", "time_method"]], on="profile")
    days["allowed"] = ((days["total"] + 7) // 15).where(days["total"] >= 8, 0)
    cms = days[days["time_method"] == "cms_total"]
    cms = cms[(cms["total"] < 8) | (cms["billed"] != cms["allowed"]) | cms["off_range"]
              | (cms["min_with_one"] < cms["max_at_floor"])]

    day_lines = timed.merge(cms[day], on=day)                  # the lines of the flagged days only
    first_of_day = first_lines(day_lines, day)
    t003 = day_lines.merge(cms[cms["total"] < 8][day], on=day).assign(rule_id="TIME-003")
    t001 = first_of_day.merge(cms[(cms["total"] >= 8) & (cms["billed"] > cms["allowed"])][day], on=day)
    t006 = first_of_day.merge(cms[(cms["total"] >= 8) & (cms["billed"] < cms["allowed"])][day], on=day)

    # TIME-002: the day's total is right, but a code's units contradict §20.2 (billing-rules.md §3.1)
    right = cms[(cms["total"] >= 8) & (cms["billed"] == cms["allowed"])]
    split = codes.merge(right[day + ["allowed", "base_sum", "max_without_one"]], on=day)
    split["more_leftover"] = split.groupby(day)["leftover"].rank(method="min", ascending=False) - 1
    remaining = split["allowed"] - split["base_sum"]
    wrong = (split["off_range"] | ((split["units"] == split["base"] + 1)
             & ((split["more_leftover"] >= remaining) | (split["leftover"] < split["max_without_one"]))))
    per_code = codes.merge(days[days["time_method"] == "cpt_per_code"][day], on=day)
    cpt_units = ((per_code["minutes"] + 7) // 15).where(per_code["minutes"] >= 8, 0)
    code = day + ["procedure_code"]
    t002 = first_lines(timed.merge(split[wrong][code], on=code), code)
    t004 = first_lines(timed.merge(per_code[per_code["units"] > cpt_units][code], on=code), code)

    sessions = classed[classed["code_class"] == "untimed_session"]
    sums = sessions.groupby(DAY + ["procedure_code"], as_index=False)["units"].sum()
    t005 = first_lines(sessions.merge(sums[sums["units"] > 1][DAY + ["procedure_code"]], on=DAY + ["procedure_code"]),
                       DAY + ["procedure_code"])
    found = [t001.assign(rule_id="TIME-001"), t002.assign(rule_id="TIME-002"), t003, t004.assign(rule_id="TIME-004"),
             t005.assign(rule_id="TIME-005"), t006.assign(rule_id="TIME-006"), t007]
    return pd.concat([f[["rule_id", "claim_id", "line_number"]] for f in found]).assign(related_code=None)


def read(data: Path) -> dict:
    """The extract and the reference files of ``data`` (bench/generate.py's names), as pandas frames."""
    lines = pd.read_csv(data / "claims.csv", dtype=str, keep_default_na=False)
    lines["line_number"] = pd.to_numeric(lines["line_number"])
    lines["units"] = pd.to_numeric(lines["units"])
    lines["minutes"] = pd.to_numeric(lines["minutes"].replace("", None))
    lines["date_of_service"] = pd.to_datetime(lines["date_of_service"])
    edits = pd.read_csv(data / "ccipra-v322r0-f1.txt", sep="\t", skiprows=6, header=None, dtype=str,
                        names=["column_1", "column_2", "prior", "eff", "dele", "mi", "rationale"], encoding="latin-1")
    edits["source_line"] = edits.index + 7
    edits = edits[edits["mi"] != "9"]
    edits["eff"] = pd.to_datetime(edits["eff"], format="%Y%m%d")
    edits["dele"] = pd.to_datetime(edits["dele"].replace("*", "99991231"), format="%Y%m%d")
    mue_edits = pd.read_csv(data / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", skiprows=4, header=None,
                            names=["code", "value", "mai", "rationale"], dtype=str, encoding="latin-1")
    mue_edits["value"] = pd.to_numeric(mue_edits["value"])
    mue_edits["mai"] = mue_edits["mai"].str[0]
    classes = pd.read_csv(REPO / "data" / "reference" / "code_classes.csv", dtype=str)
    return {"lines": lines, "ptp": edits[["column_1", "column_2", "eff", "dele", "mi", "source_line"]],
            "mue": mue_edits[["code", "value", "mai"]], "classes": classes[["procedure_code", "code_class"]],
            "profiles": profiles()}


def check(inputs: dict) -> tuple[dict[str, pd.DataFrame], dict[str, float]]:
    """Each family's findings (KEY columns) and the seconds it took."""
    found, seconds = {}, {}
    for family, run in [("ptp", lambda i: ptp(i["lines"], i["ptp"], i["profiles"])),
                        ("mue", lambda i: mue(i["lines"], i["mue"])),
                        ("units_time", lambda i: units_time(i["lines"], i["classes"], i["profiles"])),
                        ("duplicates", lambda i: duplicates(i["lines"]))]:
        started = time.perf_counter()
        found[family] = run(inputs)
        seconds[family] = time.perf_counter() - started
    return found, seconds


def duplicates(lines: pd.DataFrame) -> pd.DataFrame:
    """DUP-001: every later copy of a line with the same day, code, modifiers (in any order) and units."""
    mods = np.sort(lines[MODS].to_numpy(dtype=str), axis=1)         # modifiers in any order
    keyed = lines[DAY + ["claim_id", "line_number", "procedure_code", "units"]].assign(
        **{f"sorted_{i}": mods[:, i] for i in range(len(MODS))}).sort_values(["claim_id", "line_number"])
    copies = keyed.duplicated(DAY + ["procedure_code", "units", *[f"sorted_{i}" for i in range(len(MODS))]])
    return keyed[copies].assign(rule_id="DUP-001", related_code=None)[KEY]


def same_findings(pandas_keys: Path, findings: Path) -> str:
    """Whether this baseline (its ``--keys`` file) found exactly the audit's findings of FAMILIES
    (a findings.parquet), compared by KEY both ways."""
    import polars as pl

    def keys(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(pl.col("rule_id"), pl.col("claim_id"), pl.col("line_number").cast(pl.Int64),
                            pl.col("related_code").cast(pl.String))

    theirs = keys(pl.read_parquet(pandas_keys))
    ours = keys(pl.read_parquet(findings).filter(pl.col("family").is_in(FAMILIES)))
    only_pandas = theirs.join(ours, on=KEY, how="anti", nulls_equal=True)
    only_ours = ours.join(theirs, on=KEY, how="anti", nulls_equal=True)
    if only_pandas.is_empty() and only_ours.is_empty() and theirs.height == ours.height:
        return f"same findings: yes, all {ours.height:,} (rule, claim, line, related code) in both"

    def by_rule(frame: pl.DataFrame) -> str:
        return ", ".join(f"{r} {n:,}" for r, n in frame.group_by("rule_id").len().sort("rule_id").iter_rows()) or "none"
    return (f"same findings: NO ({theirs.height:,} pandas, {ours.height:,} claimaudit); only pandas: "
            f"{by_rule(only_pandas)}; only claimaudit: {by_rule(only_ours)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--keys", type=Path, help="write the findings' keys here (Parquet)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    inputs = read(args.work / "data")
    read_s = time.perf_counter() - t0
    found, seconds = check(inputs)
    checks = seconds["ptp"] + seconds["mue"] + seconds["units_time"]     # the three families of the ratio

    n = len(inputs["lines"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pandas baseline on {n:,} lines (pandas {pd.__version__}): claimaudit's PTP, MUE and units/time findings")
    for name, secs, hits in [("read extract + reference", read_s, None),
                             ("PTP (PTP-001..003)", seconds["ptp"], found["ptp"]),
                             ("MUE (MUE-001, MUE-002)", seconds["mue"], found["mue"]),
                             ("units/time (TIME-001..007)", seconds["units_time"], found["units_time"]),
                             ("PTP + MUE + time, checks only", checks, None),
                             ("total incl. reading", read_s + checks, None),
                             ("DUP-001 (a check, not in the above)", seconds["duplicates"], found["duplicates"])]:
        hits_text = f"   {len(hits):,} findings" if hits is not None else ""
        print(f"{name:<34}{secs:>8.2f} s{n / secs:>14,.0f} lines/s{hits_text}")
    keys = pd.concat(found.values(), ignore_index=True)
    print("findings by rule: " + ", ".join(f"{k} {v:,}" for k, v in keys["rule_id"].value_counts().sort_index().items()))
    print(f"peak RSS: {peak:,.0f} MiB")
    if args.keys:
        keys.astype({"related_code": "string"}).to_parquet(args.keys, index=False)


if __name__ == "__main__":
    main()
