"""Baseline: the PTP + MUE + 8-minute checks as a consultant's pandas notebook would write them.

    python bench/baseline_pandas.py --work DIR     # DIR/data from bench/generate.py (or bench/run.py --keep)

Straightforward pandas: read the extract and the CMS-layout reference files, self-merge the lines of
a day for PTP pairs, group-by sums for MUE and for the CMS total-time rule. Vectorized pandas (no
row-wise apply), so it is a fair yardstick rather than a strawman. Same data and machine as
bench/run.py; it checks less than claimaudit (no allocation rule, no anatomic/placement profiles,
no versions) and is meant only as a throughput yardstick for the same three families.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import pandas as pd

TIMED = {"97032", "97033", "97034", "97035", "97036", "97110", "97112", "97113", "97116", "97124", "97140",
         "97530", "97533", "97535", "97537", "97542", "97129", "97130", "97750", "97755", "97760", "97761", "97763"}
BYPASS = {"59", "XE", "XS", "XP", "XU"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    data = parser.parse_args().work / "data"
    t0 = time.perf_counter()
    lines = pd.read_csv(data / "claims.csv", dtype=str, keep_default_na=False)
    lines["units"] = pd.to_numeric(lines["units"])
    lines["minutes"] = pd.to_numeric(lines["minutes"].replace("", None))
    lines["date_of_service"] = pd.to_datetime(lines["date_of_service"])
    ptp = pd.read_csv(data / "ccipra-v322r0-f1.txt", sep="\t", skiprows=6, header=None, dtype=str,
                      names=["c1", "c2", "prior", "eff", "dele", "mi", "rationale"], encoding="latin-1")
    ptp = ptp[ptp["mi"] != "9"]
    ptp["eff"] = pd.to_datetime(ptp["eff"], format="%Y%m%d")
    ptp["dele"] = pd.to_datetime(ptp["dele"].replace("*", "99991231"), format="%Y%m%d")
    mue = pd.read_csv(data / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", skiprows=4, header=None,
                      names=["code", "value", "mai", "rationale"], dtype=str, encoding="latin-1")
    mue["value"] = pd.to_numeric(mue["value"])
    mue["mai"] = mue["mai"].str[0]
    t_read = time.perf_counter()

    day = ["patient_id", "rendering_npi", "date_of_service"]
    lines["bypass"] = lines[["modifier_1", "modifier_2", "modifier_3", "modifier_4"]].isin(BYPASS).any(axis=1)
    pairs = lines[day + ["procedure_code"]].merge(lines[day + ["claim_id", "line_number", "procedure_code", "bypass"]],
                                                  on=day, suffixes=("_1", ""))
    pairs = pairs.merge(ptp, left_on=["procedure_code_1", "procedure_code"], right_on=["c1", "c2"])
    pairs = pairs[(pairs["date_of_service"] >= pairs["eff"]) & (pairs["date_of_service"] <= pairs["dele"])]
    ptp_hits = pairs[(pairs["mi"] == "0") | ~pairs["bypass"]]
    t_ptp = time.perf_counter()

    with_mue = lines.merge(mue, left_on="procedure_code", right_on="code")
    mue1 = with_mue[(with_mue["mai"] == "1") & (with_mue["units"] > with_mue["value"])]
    sums = with_mue[with_mue["mai"].isin(["2", "3"])].groupby(day + ["procedure_code"]).agg(
        units=("units", "sum"), value=("value", "first")).reset_index()
    mue23 = sums[sums["units"] > sums["value"]]
    t_mue = time.perf_counter()

    timed = lines[lines["procedure_code"].isin(TIMED)]
    timed = timed.assign(missing=timed["minutes"].isna())
    days = timed.groupby(day).agg(minutes=("minutes", "sum"), units=("units", "sum"),
                                  missing=("missing", "any")).reset_index()
    days = days[~days["missing"]]
    days["allowed"] = ((days["minutes"] + 7) // 15).where(days["minutes"] >= 8, 0)
    time_hits = days[days["units"] > days["allowed"]]
    t_time = time.perf_counter()

    n = len(lines)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"pandas baseline on {n:,} lines (pandas {pd.__version__})")
    for name, seconds, hits in [("read extract + reference", t_read - t0, None),
                                ("PTP (self-merge per day)", t_ptp - t_read, len(ptp_hits)),
                                ("MUE (line + day sums)", t_mue - t_ptp, len(mue1) + len(mue23)),
                                ("8-minute total (per day)", t_time - t_mue, len(time_hits)),
                                ("PTP + MUE + time, checks only", t_time - t_read, None),
                                ("total incl. reading", t_time - t0, None)]:
        print(f"{name:<34}{seconds:>8.2f} s{n / seconds:>14,.0f} lines/s" + (f"   {hits:,} hits" if hits is not None else ""))
    print(f"peak RSS: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
