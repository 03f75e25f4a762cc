"""835 (005010X221A1) remittances -> remit claims, service lines, adjustments, remarks, provider adjustments.

Set-based like the 837 reader: segments learn their transaction set, claim (CLP) and service line
(SVC) by forward-filling positions; CAS triplets and PLB pairs are exploded with list arithmetic.

* remit claim (CLP): patient control number (CLP01, = our claim id), status (CLP02: 1 primary,
  2 secondary, 3 tertiary, 4 denied, 22 reversal...), charge, paid, patient responsibility, payer
  claim control number; payer (N1*PR), payee NPI (N1*PE XX), trace number (TRN02), payment date (BPR16).
* remit line (SVC): procedure code and modifiers (SVC01-2..6), charge, paid, units (SVC05, default 1),
  service dates (DTM*472, or DTM*150/151 as start/end; else the claim's DTM*232/233).
  An SVC whose composite has no procedure code (``tertiary-payment.835``) is kept with a NULL code
  and reported in ``issue``; it is never matched on code.
* adjustments (CAS): group (CO/PR/OA/PI/CR), reason (CARC), amount, quantity; claim or line level;
  any number of triplets (up to the six a CAS can hold).
* remarks: LQ*HE (line RARC) and MOA/MIA remark codes (claim level).
* PLB provider adjustments: reason code, reference, amount, per pair.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from claimaudit.x12 import segments as sg
from claimaudit.x12.segments import element as _e
from claimaudit.x12.segments import trimmed as _ne  # remittance values are trimmed, as before


def _context(df: pl.DataFrame, st_offset: int) -> pl.DataFrame:
    tag, last = pl.col("tag"), sg.last_position
    df = df.with_columns(st_no=(tag == "ST").cum_sum().cast(pl.Int64) + st_offset, st_seg=last("ST"), clp_seg=last("CLP"),
                         svc_seg=last("SVC"), isa_ctrl=pl.when(tag == "ISA").then(_e(13)).forward_fill())
    in_claim = pl.col("clp_seg").is_not_null() & (pl.col("clp_seg") > pl.col("st_seg").fill_null(0)) & \
        ~tag.is_in(["SE", "GE", "IEA", "PLB"])
    in_line = in_claim & pl.col("svc_seg").is_not_null() & (pl.col("svc_seg") > pl.col("clp_seg"))
    return df.with_columns(clp_seg=pl.when(in_claim).then(pl.col("clp_seg")),
                           svc_seg=pl.when(in_line).then(pl.col("svc_seg")))


def _header(df: pl.DataFrame) -> pl.DataFrame:
    outside = df.filter(pl.col("clp_seg").is_null())
    tag = pl.col("tag")

    def attr(cond: pl.Expr, **cols: pl.Expr) -> pl.DataFrame:
        return outside.filter(cond).group_by("st_no").agg([c.first().alias(n) for n, c in cols.items()])

    parts = [attr(tag == "BPR", payment_amount=_ne(2), payment_date=_ne(16)),
             attr(tag == "TRN", trace_number=_ne(2)),
             attr((tag == "N1") & (_e(1) == "PR"), payer=_ne(2)),
             attr((tag == "N1") & (_e(1) == "PE"), payee_npi=pl.when(_e(3) == "XX").then(_ne(4)))]
    out = df.select("st_no").unique()
    for part in parts:
        out = out.join(part, on="st_no", how="left")
    return out


def _triplets(rows: pl.DataFrame, start: int, width: int, count: int, names: list[str]) -> pl.DataFrame:
    """Explode repeated element groups (CAS triplets, PLB pairs) into rows."""
    k = pl.int_ranges(0, count).alias("k")
    exploded = rows.with_columns(k).explode("k")
    picks = {name: pl.col("el").list.get(pl.col("k") * width + start + i, null_on_oob=True)
             for i, name in enumerate(names)}
    return exploded.with_columns(**picks).drop("el", "k")


def read_835(path: Path) -> dict[str, pl.DataFrame]:
    """Tables of one 835 file (strings typed, positions as provenance) and the reader's warnings."""
    seps = sg.separators(path, sg.head(path))
    out: dict[str, list[pl.DataFrame]] = {k: [] for k in ("claims", "lines", "adjustments", "remarks", "plb")}
    st_offset, interchange, first = 0, None, True
    for piece, before in sg.iter_pieces(path, seps):
        if first:
            sg.component_separator(path, piece, seps)
            first = False
        df = sg.frame(piece, seps, before).with_columns(el=pl.col("raw").str.split(seps.element)).drop("raw")
        df = _context(df, st_offset).with_columns(pl.col("isa_ctrl").fill_null(pl.lit(interchange, pl.String)))
        st_offset = int(df["st_no"].max() or 0)
        if df["isa_ctrl"].drop_nulls().len():
            interchange = df["isa_ctrl"].drop_nulls().last()
        comp, tag = seps.component, pl.col("tag")
        num = lambda i: _ne(i).cast(pl.Decimal(12, 2), strict=False)  # noqa: E731
        claim_dates = df.filter(pl.col("clp_seg").is_not_null() & pl.col("svc_seg").is_null() & (tag == "DTM")
                                ).group_by("clp_seg").agg(
            claim_start=pl.when(_e(1) == "232").then(_ne(2)).drop_nulls().first(),
            claim_end=pl.when(_e(1) == "233").then(_ne(2)).drop_nulls().first())
        claims = (df.filter(tag == "CLP").select(
            "st_no", "isa_ctrl", clp_seg="seg", patient_control_number=_ne(1), status=_ne(2), charge=num(3),
            paid=num(4), patient_responsibility=num(5), filing_indicator=_ne(6), payer_claim_id=_ne(7))
            .join(_header(df), on="st_no", how="left").join(claim_dates, on="clp_seg", how="left"))
        line_dates = df.filter(pl.col("svc_seg").is_not_null() & (tag == "DTM")).group_by("svc_seg").agg(
            start=pl.when(_e(1).is_in(["472", "150"])).then(_ne(2)).drop_nulls().first(),
            end=pl.when(_e(1).is_in(["472", "151"])).then(_ne(2)).drop_nulls().last())
        composite = _ne(1).str.split(comp)
        lines = (df.filter(tag == "SVC").select(
            "clp_seg", svc_seg="seg", qualifier=composite.list.first(),
            procedure_code=composite.list.get(1, null_on_oob=True),
            modifiers=composite.list.slice(2, 4), charge=num(2), paid=num(3), revenue_code=_ne(4),
            units=_ne(5).cast(pl.Decimal(9, 2), strict=False).fill_null(pl.lit(1).cast(pl.Decimal(9, 2))))
            .join(line_dates, on="svc_seg", how="left").join(claim_dates, on="clp_seg", how="left")
            .with_columns(service_date=pl.coalesce("start", "claim_start").str.to_date("%Y%m%d", strict=False),
                          service_end_date=pl.coalesce("end", "start", "claim_end", "claim_start")
                          .str.to_date("%Y%m%d", strict=False),
                          issue=pl.when(pl.col("procedure_code").is_null() | (pl.col("procedure_code") == ""))
                          .then(pl.format("segment {}: SVC01 has no procedure code", "svc_seg")))
            .drop("start", "end", "claim_start", "claim_end"))
        cas = df.filter(tag == "CAS").select("clp_seg", "svc_seg", "seg", "el", group=_ne(1))
        adjustments = (_triplets(cas, 2, 3, 6, ["reason", "amount", "quantity"])
                       .filter(pl.col("reason").is_not_null() & (pl.col("reason") != ""))
                       .with_columns(pl.col("amount").cast(pl.Decimal(12, 2), strict=False),
                                     pl.col("quantity").cast(pl.Decimal(9, 2), strict=False),
                                     level=pl.when(pl.col("svc_seg").is_not_null()).then(pl.lit("line"))
                                     .otherwise(pl.lit("claim"))))
        remarks = pl.concat([
            df.filter((tag == "LQ") & pl.col("svc_seg").is_not_null()).select(
                "clp_seg", "svc_seg", "seg", qualifier=_ne(1), code=_ne(2), level=pl.lit("line")),
            _triplets(df.filter(tag.is_in(["MOA", "MIA"]) & pl.col("clp_seg").is_not_null())
                      .select("clp_seg", "svc_seg", "seg", "el"), 3, 1, 5, ["code"])
            .filter(pl.col("code").is_not_null() & (pl.col("code") != ""))
            .select("clp_seg", "svc_seg", "seg", qualifier=pl.lit("MOA"), code="code", level=pl.lit("claim")),
        ], how="vertical_relaxed")
        plb = (_triplets(df.filter(tag == "PLB").select("st_no", "seg", "el", provider=_ne(1), fiscal_date=_ne(2)),
                         3, 2, 6, ["reason", "amount"])
               .filter(pl.col("reason").is_not_null() & (pl.col("reason") != ""))
               .with_columns(reference=pl.col("reason").str.split(comp).list.get(1, null_on_oob=True),
                             reason=pl.col("reason").str.split(comp).list.first(),
                             amount=pl.col("amount").cast(pl.Decimal(12, 2), strict=False)))
        for name, frame in (("claims", claims), ("lines", lines), ("adjustments", adjustments),
                            ("remarks", remarks), ("plb", plb)):
            out[name].append(frame)
    tables = {k: pl.concat(v, how="vertical_relaxed") for k, v in out.items()}
    tables["warnings"] = seps.warnings
    return tables
