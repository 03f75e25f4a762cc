"""Generate a synthetic claim-line extract and a full-size synthetic CMS reference set.

    python bench/generate.py --lines 1000000 --out bench/out/1m

Writes claims.csv and claims.parquet in the canonical layout (~4 lines per visit, a skewed mix of
outpatient therapy, E/M and radiology codes, realistic modifier/unit/minute distributions, a few
percent of each error family) and, in the CMS layouts, ccipra-v322r0-f1.txt (PTP, default 2M rows
over ~10k codes, including real therapy pairs) and MCR_MUE_PractitionerServices_Eff_01-01-2026.csv
(~15k rows). Everything is generated with numpy/Polars column operations; nothing is committed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

THERAPY = {  # code: (weight, timed, modifier)
    "97110": (30, True, "GP"), "97140": (14, True, "GP"), "97530": (12, True, "GP"), "97112": (10, True, "GP"),
    "97116": (3, True, "GP"), "97035": (3, True, "GP"), "97535": (3, True, "GO"), "97032": (2, True, "GP"),
    "97161": (1.5, False, "GP"), "97162": (1.5, False, "GP"), "97165": (1, False, "GO"), "G0283": (4, False, "GP"),
    "97150": (1, False, "GP"), "97164": (1, False, "GP"),
}
OTHER = {"99213": 5, "99214": 4, "99203": 1, "72100": 1.5, "73560": 1.5, "73030": 1, "20610": 1, "36415": 1,
         "80053": 1, "85025": 1, "93000": 1}


def _npi_pool(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 10-digit NPIs with valid Luhn check digits (prefix 80840), vectorized."""
    base = rng.choice(np.arange(100_000_000, 299_999_999), size=n, replace=False)
    digits = np.stack([(base // 10 ** (8 - i)) % 10 for i in range(9)], axis=1)
    full = np.concatenate([np.tile([8, 0, 8, 4, 0], (n, 1)), digits], axis=1)       # 14 digits
    doubled = full[:, ::-1].copy()
    doubled[:, 0::2] *= 2                                                         # rightmost doubles first
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return np.char.add(base.astype(str), check.astype(str))


def claims(n_lines: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n_visits = max(1, n_lines // 2)            # more than enough visits; the frame is cut to n_lines
    per_visit = rng.choice([2, 3, 4, 5, 6], size=n_visits, p=[0.15, 0.25, 0.25, 0.2, 0.15])
    per_visit = per_visit[np.cumsum(per_visit) <= int(n_lines * 1.3) + 10]   # headroom for the per-visit dedupe
    n_visits = len(per_visit)
    n = int(per_visit.sum())
    visit = np.repeat(np.arange(n_visits), per_visit)
    line_no = np.arange(n) - np.repeat(np.cumsum(per_visit) - per_visit, per_visit) + 1

    patients = rng.integers(0, max(1, n_visits // 8), size=n_visits)
    npis = _npi_pool(rng, 400)
    visit_npi = npis[rng.integers(0, len(npis), size=n_visits)]
    dos = np.datetime64("2026-01-02") + rng.integers(0, 270, size=n_visits).astype("timedelta64[D]")
    payer_ix = rng.choice(4, size=n_visits, p=[0.5, 0.2, 0.15, 0.15])
    payers = np.array(["MEDICARE PART B", "BLUE CROSS PPO", "AETNA", "UNITED HEALTHCARE"])[payer_ix]
    profiles = np.where(payer_ix == 0, "medicare", "commercial_cpt")

    codes = list(THERAPY) + list(OTHER)
    weights = np.array([THERAPY[c][0] for c in THERAPY] + list(OTHER.values()), dtype=float)
    code = np.array(codes)[rng.choice(len(codes), size=n, p=weights / weights.sum())]
    timed = np.isin(code, [c for c, v in THERAPY.items() if v[1]])
    therapy_mod = pl.Series(code).replace_strict({c: v[2] for c, v in THERAPY.items()}, default="").to_numpy()

    minutes = np.where(timed, rng.integers(8, 39, size=n), -1)
    units = np.where(timed, (minutes + 7) // 15, 1)
    units = np.where(rng.random(n) < 0.02, units + 1, units)                    # ~2% over-billed units
    minutes = np.where(timed & (rng.random(n) < 0.01), -1, minutes)            # ~1% timed lines without minutes
    mod1 = np.where(therapy_mod != "", therapy_mod, "")
    mod1 = np.where((therapy_mod != "") & (rng.random(n) < 0.02), "", mod1)    # ~2% missing GP/GO
    mod2 = np.where(rng.random(n) < 0.06, "59", np.where(rng.random(n) < 0.01, "KX", ""))
    fee = np.where(timed, 48.0, np.where(np.char.startswith(code, "99"), 110.0, 60.0))
    charge = np.round(fee * units, 2)
    allowed = np.round(charge * np.where(payer_ix[visit] == 0, 0.62, 0.8), 2)

    frame = pl.DataFrame({
        "claim_id": np.char.add("C", (visit + 1).astype(str)),
        "line_number": line_no.astype(np.int32),
        "patient_id": np.char.add("P", patients[visit].astype(str)),
        "rendering_npi": visit_npi[visit],
        "billing_npi": np.full(n, npis[0]),
        "payer": payers[visit],
        "profile": profiles[visit],
        "date_of_service": dos[visit],
        "procedure_code": code,
        "modifier_1": mod1, "modifier_2": mod2, "modifier_3": np.full(n, ""), "modifier_4": np.full(n, ""),
        "units": units.astype(np.int32),
        "minutes": minutes,
        "charge_amount": charge, "allowed_amount": allowed,
        "place_of_service": np.where(rng.random(n) < 0.05, "02", "11"),
    }).with_columns(pl.when(pl.col("minutes") < 0).then(None).otherwise(pl.col("minutes")).alias("minutes"),
                    pl.col("date_of_service").cast(pl.Date))
    # one line per code and visit (a repeated code is one line with more units), renumbered
    frame = frame.filter(pl.struct("claim_id", "procedure_code").is_first_distinct()).with_columns(
        line_number=(pl.int_range(pl.len()).over("claim_id") + 1).cast(pl.Int32))
    # ~0.5% exact duplicate lines on a resubmitted claim
    frame = frame.head(n_lines - n_lines // 200)
    dup = frame.sample(n=n_lines - frame.height, seed=seed).with_columns(pl.col("claim_id") + "R")
    return pl.concat([frame, dup])


def ptp_file(path: Path, n_rows: int, seed: int = 11) -> None:
    rng = np.random.default_rng(seed)
    pool = np.array([f"{c:05d}" for c in rng.choice(np.arange(10000, 99999), 10_000, replace=False)]
                    + list(THERAPY) + list(OTHER))
    c1 = pool[rng.integers(0, len(pool), n_rows)]
    c2 = pool[rng.integers(0, len(pool), n_rows)]
    eff = rng.choice(["19960101", "20100101", "20200101", "20220101"], n_rows)
    dele = np.where(rng.random(n_rows) < 0.3, rng.choice(["20181231", "20231231"], n_rows), "*")
    mi = rng.choice(["0", "1", "9"], n_rows, p=[0.1, 0.85, 0.05])
    frame = pl.DataFrame({"c1": c1, "c2": c2, "p": "", "e": eff, "d": dele, "m": mi,
                          "r": "Misuse of Column Two code with Column One code"}).filter(pl.col("c1") != pl.col("c2"))
    therapy = pl.DataFrame({"c1": ["97140", "97530", "97150", "97110", "29581"], "c2": ["97530", "97116", "97110", "97164", "97140"],
                            "p": "", "e": "20000101", "d": "*", "m": "1", "r": "therapy pair"})
    body = pl.concat([therapy, frame]).unique(subset=["c1", "c2", "e"], keep="first", maintain_order=True)
    header = ("CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t\r\n"
              "Column1/Column2 Edits\t\t\t\t\t\t\r\n"
              "Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\r\n"
              "\t\tprior to 1996\tDate\tDate\t0=not allowed\t\r\n\t\t\t\t*=no data\t1=allowed\t\r\n"
              "\t\t\t\t\t9=not applicable\t\r\n")
    with path.open("wb") as fh:
        fh.write(header.encode("latin-1"))
        body.write_csv(fh, separator="\t", include_header=False, line_terminator="\r\n", quote_style="never")


def mue_file(path: Path, n_rows: int = 15_000, seed: int = 13) -> None:
    rng = np.random.default_rng(seed)
    codes = np.unique(np.concatenate([[f"{c:05d}" for c in rng.choice(np.arange(10000, 99999), n_rows, replace=False)],
                                      list(THERAPY), list(OTHER)]))
    mai = rng.choice(["1 Line Edit", "2 Date of Service Edit: Policy", "3 Date of Service Edit: Clinical"], len(codes))
    value = rng.choice([1, 2, 3, 4, 6, 8], len(codes))
    # the generator's own codes get values that a few percent of visits exceed, as in real extracts
    known = {**{c: (4, "3 Date of Service Edit: Clinical") for c, v in THERAPY.items() if v[1]},
             **{c: (1, "2 Date of Service Edit: Policy") for c, v in THERAPY.items() if not v[1]},
             **{c: (2, "1 Line Edit") for c in OTHER}, "97035": (2, "3 Date of Service Edit: Clinical")}
    frame = pl.DataFrame({"code": codes, "value": value, "mai": mai, "r": "Clinical: Data"}).with_columns(
        value=pl.col("code").replace_strict({c: v for c, (v, _) in known.items()}, default=pl.col("value")),
        mai=pl.col("code").replace_strict({c: m for c, (_, m) in known.items()}, default=pl.col("mai")))
    with path.open("wb") as fh:
        fh.write(b'"CPT codes copyright 2025 American Medical Association.\r\nAll rights reserved.",,,\r\n'
                 b'"HCPCS/\r\nCPT Code",Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\r\n')
        frame.write_csv(fh, include_header=False, line_terminator="\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--ptp-rows", type=int, default=2_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    lines = write_claims(args.lines, args.out)
    ptp_file(args.out / "ccipra-v322r0-f1.txt", args.ptp_rows)
    mue_file(args.out / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv")
    print(f"generated {lines:,} lines and the reference set in {time.perf_counter() - t:.1f} s -> {args.out}")


CHUNK = 10_000_000      # lines generated at once: a 30M extract is three practices' worth, appended


def write_claims(n_lines: int, out: Path) -> int:
    """claims.csv and claims.parquet of ``n_lines``, generated CHUNK lines at a time (own seed, claim and
    patient ids prefixed per chunk), so memory stays that of one chunk; up to CHUNK lines the data is
    the same as a single ``claims(n_lines)``."""
    import pyarrow.parquet as pq

    written, writer = 0, None
    try:
        with (out / "claims.csv").open("wb") as fh:
            for k, start in enumerate(range(0, n_lines, CHUNK)):
                frame = claims(min(CHUNK, n_lines - start), seed=7 + k)
                if k:
                    frame = frame.with_columns([(pl.lit(f"K{k}") + pl.col(c)).alias(c) for c in ("claim_id", "patient_id")])
                frame.write_csv(fh, include_header=k == 0)
                table = frame.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(out / "claims.parquet", table.schema, compression="zstd")
                writer.write_table(table)
                written += frame.height
                del frame, table
    finally:
        if writer is not None:
            writer.close()
    return written


if __name__ == "__main__":
    main()
