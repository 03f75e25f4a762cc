"""Turn raw string records into canonical claim lines, or quarantine them with a reason.

Everything here is a Polars expression over whole columns. Each record gets the *first* failing
check as its machine-readable reason (``missing_required:patient_id``, ``bad_date:date_of_service``,
``non_positive_units``, ``bad_code_format`` ...); the rest are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from claimaudit.errors import InputError
from claimaudit.ingest.mapping import Mapping
from claimaudit.ingest.readers import LINE, RawFile
from claimaudit.schema import CLAIM_LINE_SCHEMA, MAX_MODIFIERS, REQUIRED_COLUMNS

CODE_FORMAT = r"^[0-9A-Z]{5}$"
MODIFIER_FORMAT = r"^[0-9A-Z]{2}$"
NPI_FORMAT = r"^\d{10}$"
_EXCEL_FLOAT = r"\.0+$"                  # 1234567893.0 from a spreadsheet cell
RAW = "__raw_"                           # prefix of the original columns while typing
_TIME_SUFFIX = r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"


def _text(col: str | pl.Expr) -> pl.Expr:
    """Trimmed text; empty cells are NULL."""
    e = (pl.col(col) if isinstance(col, str) else col).cast(pl.String).str.strip_chars()
    return pl.when(e == "").then(None).otherwise(e)


def _date(col: str | pl.Expr, formats: list[str]) -> pl.Expr:
    """First format that parses. ``%Y`` happily reads "3/6/24" as the year 24, so a result before 1900
    counts as a miss and the next format (``%y``) gets its turn."""
    base = _text(col).str.replace(_TIME_SUFFIX, "")
    parsed = [base.str.strptime(pl.Date, f, strict=False) for f in formats]
    return pl.coalesce([pl.when(p.dt.year() >= 1900).then(p) for p in parsed])


def _number(col: str | pl.Expr) -> pl.Expr:
    return _text(col).str.replace_all(r"[$,]", "")


def _integer(col: str | pl.Expr) -> pl.Expr:
    return _number(col).str.replace(_EXCEL_FLOAT, "").cast(pl.Int32, strict=False)


def _split_list(cols: list[str], separator: str) -> pl.Expr:
    parts = [_text(c).str.to_uppercase().str.replace_all(separator, "\x1f").str.split("\x1f") for c in cols]
    joined = pl.concat_list([p.fill_null(pl.lit([], pl.List(pl.String))) for p in parts]) if parts else \
        pl.lit([], pl.List(pl.String))
    return joined.list.eval(pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0))


def normalize(raw: RawFile, mapping: Mapping, *, default_profile: str, known_profiles: set[str],
              source_file: str) -> pl.LazyFrame:
    """Type one file's records (lazily); the result keeps the raw columns and adds canonical ones and ``__reason``."""
    frame = raw.frame.rename({c: RAW + c for c in raw.frame.columns if c != LINE})
    present = {c for c in raw.frame.columns if c != LINE}
    constants = {c: v for c, v in mapping.constants.items()}

    def src(canonical: str) -> str | None:
        name = mapping.source_for(canonical)
        return name if name in present else None

    missing = [c for c in REQUIRED_COLUMNS if src(c) is None and c not in constants]
    if missing:
        header = ", ".join(sorted(present))[:300]
        hint = "" if mapping.name != "canonical" else " (use --mapping for other layouts)"
        raise InputError(f"{raw.path}: no recognizable header: missing column(s) "
                         f"{', '.join(mapping.source_for(c) for c in missing)} for mapping {mapping.name!r}{hint}; "
                         f"found: {header}")

    def s(canonical: str) -> pl.Expr:
        """The canonical column's trimmed text, as an expression over the raw column (or a constant)."""
        if canonical in constants:
            return pl.lit(constants[canonical], pl.String)
        name = src(canonical)
        return _text(RAW + name) if name else pl.lit(None, pl.String)

    mod_cols = [mapping.modifier_column] if mapping.modifier_column else mapping.modifier_columns
    mod_cols = [RAW + c for c in mod_cols if c in present]
    dx_cols = [RAW + c for c in mapping.diagnosis_columns if c in present]

    # Lazy: the trimmed texts stay expressions, so only the typed columns, the reason and the raw
    # columns (shared buffers, no copy) are ever materialized.
    payer_map = mapping.payer_profiles
    profile_from_payer = (s("payer").str.to_uppercase().replace_strict(payer_map, default=None, return_dtype=pl.String)
                          if payer_map else pl.lit(None, pl.String))
    fmt = mapping.formats_for
    typed = frame.lazy().with_columns(
        claim_id=s("claim_id"),
        line_number=s("line_number").str.replace(_EXCEL_FLOAT, "").cast(pl.Int32, strict=False),
        patient_id=s("patient_id"),
        rendering_npi=s("rendering_npi").str.replace(_EXCEL_FLOAT, ""),
        billing_npi=s("billing_npi").str.replace(_EXCEL_FLOAT, ""),
        payer=s("payer"),
        profile=pl.coalesce(s("profile").str.to_lowercase(), profile_from_payer, pl.lit(default_profile)),
        date_of_service=_date(s("date_of_service"), fmt("date_of_service")),
        procedure_code=s("procedure_code").str.to_uppercase(),
        modifiers=_split_list(mod_cols, mapping.modifier_separator),
        units=_number(s("units")).cast(pl.Decimal(9, 2), strict=False),
        minutes=_integer(s("minutes")),
        charge_amount=_number(s("charge_amount")).cast(pl.Decimal(12, 2), strict=False),
        allowed_amount=_number(s("allowed_amount")).cast(pl.Decimal(12, 2), strict=False),
        place_of_service=s("place_of_service").str.replace(_EXCEL_FLOAT, "").str.zfill(2),
        diagnosis_codes=_split_list(dx_cols, mapping.diagnosis_separator).list.eval(
            pl.element().str.replace_all(r"\.", "")),
        provider_discipline=s("provider_discipline").str.to_uppercase(),
        assistant_minutes=_integer(s("assistant_minutes")),
        source_file=pl.lit(source_file),
        source_row=pl.col(LINE),
        service_end_date=_date(s("service_end_date"), fmt("date_of_service")),
        source_interchange=s("source_interchange"),
    )

    def present_but_bad(c: str, typed_col: str | None = None) -> pl.Expr:
        return s(c).is_not_null() & pl.col(typed_col or c).is_null()

    checks: list[tuple[pl.Expr, pl.Expr]] = [
        *[(s(c).is_null() if c not in constants else pl.lit(False), pl.lit(f"missing_required:{c}"))
          for c in REQUIRED_COLUMNS],
        (present_but_bad("line_number") | (pl.col("line_number") <= 0), pl.lit("bad_integer:line_number")),
        (present_but_bad("date_of_service"), pl.lit("bad_date:date_of_service")),
        (present_but_bad("service_end_date"), pl.lit("bad_date:service_end_date")),
        (~pl.col("procedure_code").str.contains(CODE_FORMAT), pl.lit("bad_code_format")),
        (present_but_bad("units"), pl.lit("bad_number:units")),
        (pl.col("units") <= 0, pl.lit("non_positive_units")),
        (~pl.col("rendering_npi").str.contains(NPI_FORMAT), pl.lit("bad_npi_format:rendering_npi")),
        (pl.col("billing_npi").is_not_null() & ~pl.col("billing_npi").str.contains(NPI_FORMAT),
         pl.lit("bad_npi_format:billing_npi")),
        (pl.col("modifiers").list.len() > MAX_MODIFIERS, pl.lit("too_many_modifiers")),
        (pl.col("modifiers").list.eval(~pl.element().str.contains(MODIFIER_FORMAT)).list.any(),
         pl.lit("bad_modifier_format")),
        (present_but_bad("minutes") | (pl.col("minutes") < 0), pl.lit("bad_integer:minutes")),
        (present_but_bad("assistant_minutes") | (pl.col("assistant_minutes") < 0),
         pl.lit("bad_integer:assistant_minutes")),
        (present_but_bad("charge_amount"), pl.lit("bad_amount:charge_amount")),
        (present_but_bad("allowed_amount"), pl.lit("bad_amount:allowed_amount")),
        (pl.col("place_of_service").is_not_null() & ~pl.col("place_of_service").str.contains(r"^\d{2}$"),
         pl.lit("bad_place_of_service")),
        (~pl.col("profile").is_in(sorted(known_profiles)), pl.format("unknown_profile:{}", pl.col("profile"))),
    ]
    reason = pl.coalesce([pl.when(cond.fill_null(False)).then(label) for cond, label in checks])
    return typed.with_columns(__reason=reason)


@dataclass
class Normalized:
    loaded: pl.DataFrame        # canonical schema
    quarantined: pl.DataFrame   # original columns + reason, source_file, source_line


def split(typed: pl.LazyFrame, raw_columns: list[str], rejects: list[pl.DataFrame], *,
          keys_per_file: bool = False) -> Normalized:
    """Split typed records (from every file of the run) into loaded lines and quarantine rows.

    claim_id + line_number must be unique in a run: a later occurrence of a key (in input order) is
    quarantined as ``duplicate_claim_line`` so the line is still audited once. ``keys_per_file``
    (landing-folder runs) applies that within each file only: across files a newer file's claim
    supersedes the older one (landing.py).
    """
    valid = pl.col("__reason").is_null()
    later = pl.struct("claim_id", "line_number").is_first_distinct().not_().over(
        [valid, "source_file"] if keys_per_file else valid)
    keep = [*CLAIM_LINE_SCHEMA, "source_row", "__reason", *[RAW + c for c in raw_columns]]
    typed = typed.with_columns(__reason=pl.when(valid & later).then(pl.lit("duplicate_claim_line"))
                               .otherwise(pl.col("__reason"))).select(list(dict.fromkeys(keep))).collect()
    quarantined = typed.filter(pl.col("__reason").is_not_null()).select(
        *[pl.col(RAW + c).alias(c) for c in raw_columns], reason=pl.col("__reason"), source_file=pl.col("source_file"), source_line=pl.col("source_row"))
    if rejects:
        quarantined = pl.concat([quarantined, *rejects], how="diagonal")
    loaded = typed.filter(pl.col("__reason").is_null()).select(
        [pl.col(c).cast(t) for c, t in CLAIM_LINE_SCHEMA.items()])
    return Normalized(loaded, quarantined)


def rejects_as_quarantine(raw: RawFile, source_file: str) -> pl.DataFrame:
    """Records the CSV parser could not split, in the quarantine layout."""
    reason = (pl.when(pl.col("error").str.starts_with("x12")).then(pl.col("error")).otherwise(pl.lit("unparseable_row"))
              if "error" in raw.rejects.columns else pl.lit("unparseable_row"))
    return raw.rejects.select(raw_record=pl.col("raw_record"), reason=reason,
                              source_file=pl.lit(source_file), source_line=pl.col(LINE))
