"""Baseline: the checks claimaudit shares with the `claim-validator` package, one claim at a time.

    pip install -e '.[bench]'
    python bench/baseline_claim_validator.py --work DIR [--lines N]   # DIR/data from bench/generate.py

claim-validator (PyPI, MIT) validates one ``ClaimData`` (a pydantic model) per call. The shared
checks are duplicate service lines, the NPI check digit and the modifier format, so the pipeline
here holds exactly ``NPIValidator``, ``DuplicateValidator`` and ``CodingValidator`` (which also
checks diagnosis/procedure code formats; it is the one that owns the modifier-format check). Its
models check NPI and modifier formats while they are built, so a claim with a bad NPI or modifier
raises ``ValidationError`` at construction; that counts as validated-with-errors, as a user of the
package would have to handle it.

Reading the CSV and grouping lines into claims are timed apart from validation; the throughput
reported is lines validated per second of validation (building the models + ``pipeline.run``),
which favours the baseline. ``--lines`` takes the first N lines (whole claims) so a run stays short;
throughput per line does not depend on N for a one-claim-at-a-time validator.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import polars as pl
from claim_validator.models.claim import ClaimData
from claim_validator.validators.pipeline import ValidationPipeline
from claim_validator.validators.rule_based.coding import CodingValidator
from claim_validator.validators.rule_based.duplicate import DuplicateValidator
from claim_validator.validators.rule_based.npi import NPIValidator
from pydantic import ValidationError

MODIFIERS = ["modifier_1", "modifier_2", "modifier_3", "modifier_4"]


def claims_from(frame: pl.DataFrame) -> list[dict]:
    """One plain dict per claim in claim-validator's input shape (grouped by Polars, not by hand)."""
    lines = frame.select(
        "claim_id", "billing_npi",
        pl.struct(
            procedure_code=pl.col("procedure_code"),
            modifiers=pl.concat_list(MODIFIERS).list.eval(pl.element().filter(pl.element() != "")),
            charge_amount=pl.col("charge_amount").cast(pl.Float64, strict=False).fill_null(0.0),
            units=pl.col("units").cast(pl.Float64, strict=False).fill_null(1.0),
            service_date_from=pl.col("date_of_service"),
            place_of_service=pl.col("place_of_service"),
            diagnosis_pointers=pl.lit([1]),
            rendering_provider_npi=pl.col("rendering_npi"),
        ).alias("line"))
    grouped = lines.group_by("claim_id", maintain_order=True).agg(
        pl.col("billing_npi").first().alias("billing_provider_npi"), pl.col("line").alias("lines"))
    # The extract carries no diagnoses and ClaimData requires one: every claim gets the same valid
    # placeholder (M25.561, pain in right knee), pointed to by each line, so no claim fails for that.
    return grouped.with_columns(diagnosis_codes=pl.lit([{"code": "M25.561", "pointer": 1}])).to_dicts()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--lines", type=int, default=100_000, help="validate the claims of the first N lines")
    args = parser.parse_args()

    t0 = time.perf_counter()
    frame = pl.read_csv(args.work / "data" / "claims.csv", infer_schema=False, n_rows=args.lines)
    claims = claims_from(frame)
    t_read = time.perf_counter()

    pipeline = (ValidationPipeline.builder().add(NPIValidator).add(DuplicateValidator)
                .add(CodingValidator).build())
    rejected = flagged = 0
    for payload in claims:     # the package's unit of work is one claim
        try:
            claim = ClaimData.model_validate(payload)
        except ValidationError:
            rejected += 1
            continue
        result = pipeline.run(claim)
        flagged += any(phase.findings for phase in result.phase_results)
    t_done = time.perf_counter()

    seconds = t_done - t_read
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"claim-validator 0.3 on {frame.height:,} lines / {len(claims):,} claims")
    print(f"  read + group into claims   {t_read - t0:8.2f} s")
    print(f"  validate (NPI, duplicates, modifier format)  {seconds:8.2f} s  "
          f"{frame.height / seconds:,.0f} lines/s")
    print(f"  claims rejected at model construction {rejected:,}; claims with findings {flagged:,}")
    print(f"  peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
