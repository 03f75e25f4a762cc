"""837P (005010X222A1 / A2) professional claims -> canonical claim-line records (strings).

Set-based: the segments of a piece are one Polars frame; each segment learns its context (its
transaction set, HL, claim and service line) by forward-filling the positions of the ST, HL, CLM
and LX segments before it, and the loops are joined by those positions. No loop over claims.

Field sources (docs/x12.md has the full table):

* claim_id = CLM01; line_number = LX01; charge = SV102; units = SV104 when SV103 = UN; when SV103 = MJ
  (anesthesia minutes) minutes = SV104 and units = 1; place of service = SV105, else CLM05-1.
* procedure code and up to four modifiers = SV101-2..6 (SV101-1 must be HC).
* date of service = DTP*472 of the line (D8, or the start of an RD8 range; the end is kept in
  service_end_date).
* diagnosis codes = the HI codes the line's SV107 pointers name, in pointer order.
* rendering NPI: line NM1*82 (2420A), else claim NM1*82 (2310B), else billing provider NM1*85 (2010AA).
* billing NPI = NM1*85; payer = NM1*PR name (2010BB); patient = subscriber member id (NM1*IL) when the
  claim sits under the subscriber HL (22); under a dependent HL (23) the member id plus a short hash of
  the dependent's name and birth date (no name is stored).
* provenance: source_row = the SV1 segment's position in the file; source_interchange = ISA13.

Damage is contained where it is local: an error inside a claim drops that claim; an error in a
transaction set outside any claim (header, provider or subscriber loops) drops the claims of that
transaction set; a file that is not an interchange at all is an InputError. Dropped claims come back
as rejects (one per service line) with a reason naming the segment position.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from claimaudit.x12 import segments as sg

LINE = "__line"


def _e(i: int) -> pl.Expr:
    return pl.col("el").list.get(i, null_on_oob=True)


def _ne(i: int) -> pl.Expr:
    """Element i, NULL when empty."""
    v = _e(i).str.strip_chars()
    return pl.when(v == "").then(None).otherwise(v)


def _context(df: pl.DataFrame, st_offset: int) -> pl.DataFrame:
    tag = pl.col("tag")

    def last(t: str) -> pl.Expr:
        return pl.when(tag == t).then(pl.col("seg")).forward_fill()

    df = df.with_columns(st_no=(tag == "ST").cum_sum() + st_offset, st_seg=last("ST"), hl_seg=last("HL"),
                         clm_seg=last("CLM"), lx_seg=last("LX"),
                         isa_ctrl=pl.when(tag == "ISA").then(_e(13)).forward_fill())
    in_claim = pl.col("clm_seg").is_not_null() & (pl.col("clm_seg") > pl.col("hl_seg").fill_null(0)) & \
        (pl.col("clm_seg") > pl.col("st_seg").fill_null(0))
    in_line = in_claim & pl.col("lx_seg").is_not_null() & (pl.col("lx_seg") > pl.col("clm_seg"))
    return df.with_columns(clm_seg=pl.when(in_claim).then(pl.col("clm_seg")),
                           lx_seg=pl.when(in_line).then(pl.col("lx_seg")))


def _hl_table(df: pl.DataFrame) -> pl.DataFrame:
    hl = df.filter(pl.col("tag") == "HL").select("st_no", "seg", hl_id=_ne(1), parent=_ne(2), level=_ne(3))
    outside = df.filter(pl.col("clm_seg").is_null() & pl.col("hl_seg").is_not_null())

    def attr(cond: pl.Expr, **cols: pl.Expr) -> pl.DataFrame:
        return outside.filter(cond).group_by("hl_seg").agg([c.first().alias(n) for n, c in cols.items()])

    nm1 = pl.col("tag") == "NM1"
    billing = attr(nm1 & (_e(1) == "85"), billing_npi=pl.when(_e(8) == "XX").then(_ne(9)))
    member = attr(nm1 & (_e(1) == "IL"), member_id=_ne(9))
    payer = attr(nm1 & (_e(1) == "PR"), payer=_ne(3))
    dependent = attr(nm1 & (_e(1) == "QC"), dep_name=pl.concat_str([_e(3), _e(4)], separator="|"))
    dob = attr(pl.col("tag") == "DMG", dob=_ne(2))
    for part in (billing, member, payer, dependent, dob):
        hl = hl.join(part, left_on="seg", right_on="hl_seg", how="left")
    # the parent is the latest earlier HL of the same transaction set whose id is this HL's parent id
    # (ids may be irregular or even repeat, positions never do)
    parents = hl.select("st_no", p_id="hl_id", p_seg="seg").sort("p_seg")
    return hl.sort("seg").join_asof(parents, left_on="seg", right_on="p_seg", by_left=["st_no", "parent"],
                                    by_right=["st_no", "p_id"], strategy="backward", allow_exact_matches=False,
                                    check_sortedness=False)


def _claims(df: pl.DataFrame, hl: pl.DataFrame, comp: str) -> pl.DataFrame:
    clm = df.filter(pl.col("tag") == "CLM").select(
        "st_no", "isa_ctrl", "hl_seg", clm_seg="seg", claim_id=_ne(1), claim_charge=_ne(2),
        claim_pos=_ne(5).str.split(comp).list.first())
    in_claim_only = pl.col("clm_seg").is_not_null() & pl.col("lx_seg").is_null()
    rendering = df.filter(in_claim_only & (pl.col("tag") == "NM1") & (_e(1) == "82")).group_by("clm_seg").agg(
        claim_rendering=pl.when(_e(8) == "XX").then(_ne(9)).first())
    dx = (df.filter(in_claim_only & (pl.col("tag") == "HI"))
          .select("clm_seg", "seg", codes=pl.col("el").list.slice(1))
          .explode("codes").filter(pl.col("codes").str.len_chars() > 0)
          .with_columns(pl.col("codes").str.split(comp).list.get(1, null_on_oob=True).alias("code"))
          .group_by("clm_seg").agg(pl.col("code").sort_by("seg", maintain_order=True).alias("dx_all")))
    clm = clm.join(rendering, on="clm_seg", how="left").join(dx, on="clm_seg", how="left")
    # climb up to three HL levels: the claim's HL, its parent, the grandparent
    levels = hl.select("seg", "level", "billing_npi", "member_id", "payer", "dep_name", "dob", "p_seg")
    for i in (1, 2, 3):
        left = "hl_seg" if i == 1 else f"p_seg_{i - 1}"
        clm = clm.join(levels.rename({c: f"{c}_{i}" for c in levels.columns if c != "seg"}),
                       left_on=left, right_on="seg", how="left")

    def pick(level: str, col: str) -> pl.Expr:
        return pl.coalesce([pl.when(pl.col(f"level_{i}") == level).then(pl.col(f"{col}_{i}")) for i in (1, 2, 3)])

    dependent = pick("23", "dep_name").is_not_null()
    dep_key = pl.concat_str([pick("23", "dep_name"), pick("23", "dob").fill_null("")], separator="|")
    return clm.select(
        "st_no", "isa_ctrl", "clm_seg", "claim_id", "claim_pos", "claim_rendering", "dx_all",
        billing_npi=pick("20", "billing_npi"), payer=pick("22", "payer"),
        patient_id=pl.when(dependent).then(pl.concat_str([pick("22", "member_id"), pl.lit("-D"),
                                                          dep_key.hash().cast(pl.String).str.slice(0, 8)]))
        .otherwise(pick("22", "member_id")))


def _lines(df: pl.DataFrame, comp: str) -> pl.DataFrame:
    in_line = pl.col("lx_seg").is_not_null()
    lx = df.filter(pl.col("tag") == "LX").select(lx_seg="seg", line_number=_ne(1))
    sv1 = df.filter(in_line & (pl.col("tag") == "SV1")).select(
        "clm_seg", "lx_seg", "seg", composite=_ne(1).str.split(comp), charge=_ne(2), basis=_ne(3), quantity=_ne(4),
        line_pos=_ne(5), pointers=_ne(7).str.split(comp))
    # D8 = one date, RD8 = a range (start used, end kept); any other qualifier leaves the date empty,
    # so the line is quarantined as bad_date/missing rather than read as something it does not say
    dtp = df.filter(in_line & (pl.col("tag") == "DTP") & (_e(1) == "472")).group_by("lx_seg").agg(
        dos=pl.when(_e(2).first().is_in(["D8", "RD8"])).then(_ne(3).first().str.slice(0, 8)),
        dos_end=pl.when(_e(2).first() == "RD8").then(_ne(3).first().str.slice(-8)))
    rendering = df.filter(in_line & (pl.col("tag") == "NM1") & (_e(1) == "82")).group_by("lx_seg").agg(
        line_rendering=pl.when(_e(8) == "XX").then(_ne(9)).first())
    mods = {f"modifier_{i}": pl.col("composite").list.get(i + 1, null_on_oob=True) for i in (1, 2, 3, 4)}
    return (sv1.join(lx, on="lx_seg", how="left").join(dtp, on="lx_seg", how="left")
            .join(rendering, on="lx_seg", how="left")
            .with_columns(qualifier=pl.col("composite").list.first(),
                          procedure_code=pl.col("composite").list.get(1, null_on_oob=True), **mods))


def _errors(df: pl.DataFrame, seps: sg.Separators, path: Path) -> pl.DataFrame:
    """Damage found in the segments: (st_no, clm_seg or NULL for the whole transaction set, reason)."""
    tag = pl.col("tag")
    billing = df.filter((tag == "NM1") & (_e(1) == "85") & pl.col("clm_seg").is_null())
    second_billing = billing.filter(pl.col("seg") != pl.col("seg").min().over("hl_seg"))["seg"]
    problems = [
        (sg.bad_tags(df), pl.format("segment {}: '{}' is not a segment identifier", "seg",
                                    pl.col("tag").str.slice(0, 10))),
        (pl.col("seg").is_in(second_billing.implode()),
         pl.format("segment {}: a second billing provider NM1*85 in one HL loop", "seg")),
        ((tag == "N4") & (tag.shift(1) != "N3") & (tag.shift(-1) == "N3"),
         pl.format("segment {}: N4 before N3 (segments out of order)", "seg")),
        ((tag == "CLM") & (_ne(1).is_null() | _ne(2).is_null()),
         pl.format("segment {}: CLM01/CLM02 (claim id, charge) missing", "seg")),
        ((tag == "CLM") & _ne(5).is_null(), pl.format("segment {}: CLM05 (place of service) missing", "seg")),
        ((tag == "SV1") & (_e(1).str.split(seps.component).list.first() != "HC"),
         pl.format("segment {}: SV101 is not an HCPCS (HC) procedure", "seg")),
    ]
    found = pl.concat([df.filter(cond.fill_null(False)).select("st_no", "clm_seg", reason=label)
                       for cond, label in problems])
    has_hi = df.filter(pl.col("clm_seg").is_not_null()).group_by("st_no", "clm_seg").agg(hi=(tag == "HI").any())
    no_hi = has_hi.filter(~pl.col("hi")).select("st_no", "clm_seg",
                                                 reason=pl.format("segment {}: claim has no HI (diagnosis) segment",
                                                                  "clm_seg"))
    found = pl.concat([found, no_hi])
    # transaction sets: SE01 counts the segments from ST to SE
    sets = df.group_by("st_no").agg(
        n=pl.len(), has_se=(tag == "SE").any(),
        se_count=pl.when(tag == "SE").then(_e(1)).drop_nulls().first().cast(pl.Int64, strict=False),
        st_seg=pl.when(tag == "ST").then(pl.col("seg")).drop_nulls().first(),
        segs=pl.col("seg").filter((tag != "GE") & (tag != "IEA") & (tag != "GS") & (tag != "ISA")).len())
    unclosed = sets.filter(pl.col("st_seg").is_not_null() & ~pl.col("has_se")).select(
        "st_no", clm_seg=pl.lit(None, pl.Int64), reason=pl.format("segment {}: transaction set has no SE (cut short)",
                                                                     "st_seg"))
    # many real files carry a wrong SE01: worth a warning, not worth dropping claims
    for st_seg, said, counted in sets.filter(pl.col("has_se") & (pl.col("se_count") != pl.col("segs"))).select(
            "st_seg", "se_count", "segs").iter_rows():
        seps.warnings.append(f"{path}: segment {st_seg}: SE01 says {said} segments, counted {counted}")
    return pl.concat([found, unclosed], how="vertical_relaxed")


def _component_separator(path: Path, df: pl.DataFrame, seps: sg.Separators) -> None:
    """ISA16 vs the separator the SV1 composites really use ("HC:99213" or "HC>99213")."""
    used = (df.filter(pl.col("tag").is_in(["SV1", "SVC"])).select(c=_e(1).str.slice(2, 1))
            .filter((pl.col("c").str.len_chars() == 1) & ~pl.col("c").str.contains(r"^[A-Za-z0-9]$"))["c"]
            .unique().to_list())
    if used and seps.component not in used and len(used) == 1:
        seps.warnings.append(f"{path}: ISA16 declares {seps.component!r} as the component separator but the "
                             f"procedure composites use {used[0]!r}; read with {used[0]!r}")
        seps.component = used[0]


def read_837(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """Canonical string records (+ __line = SV1 position), rejects (__line, raw_record, error), warnings."""
    text_start = sg.read_text(path)[:400]
    seps = sg.separators(path, text_start)
    records, rejects, st_offset, interchange, first = [], [], 0, None, True
    for piece, before in sg.iter_pieces(path, seps):
        df = sg.frame(piece, seps, before)
        if first:
            _component_separator(path, df, seps)
            first = False
        df = _context(df, st_offset).with_columns(pl.col("isa_ctrl").fill_null(pl.lit(interchange, pl.String)))
        st_offset = int(df["st_no"].max() or 0)
        interchange = df["isa_ctrl"].drop_nulls().last() if df["isa_ctrl"].drop_nulls().len() else interchange
        comp = seps.component
        claims = _claims(df, _hl_table(df), comp)
        lines = _lines(df, comp).join(claims, on="clm_seg", how="left")
        errors = _errors(df, seps, path)
        claim_errors = errors.filter(pl.col("clm_seg").is_not_null()).group_by("clm_seg").agg(
            claim_error=pl.col("reason").sort().str.join("; "))
        set_errors = errors.filter(pl.col("clm_seg").is_null()).group_by("st_no").agg(
            set_error=pl.col("reason").sort().str.join("; "))
        lines = lines.join(claim_errors, on="clm_seg", how="left").join(set_errors, on="st_no", how="left")
        lines = lines.with_columns(error=pl.coalesce("claim_error", "set_error"))
        # a dropped claim with no service line still counts: one reject for its CLM segment
        bare = (claims.join(lines.select("clm_seg").unique(), on="clm_seg", how="anti")
                .join(claim_errors, on="clm_seg", how="left").join(set_errors, on="st_no", how="left")
                .filter(pl.coalesce("claim_error", "set_error").is_not_null())
                .select(pl.col("clm_seg").alias(LINE), raw_record=pl.concat_str([pl.lit("CLM "), "claim_id"]),
                        error=pl.concat_str([pl.lit("x12: claim "), pl.col("claim_id").fill_null("?"), pl.lit(": "),
                                             pl.coalesce("claim_error", "set_error")])))
        pointer_codes = pl.col("pointers").list.eval(pl.element().cast(pl.Int32, strict=False) - 1)
        good = lines.filter(pl.col("error").is_null()).with_columns(
            dx=pl.struct("dx_all", p=pointer_codes).map_batches(
                lambda s: s.struct.field("dx_all").list.gather(s.struct.field("p"), null_on_oob=True),
                return_dtype=pl.List(pl.String)))
        records.append(good.select(
            claim_id="claim_id", line_number="line_number", patient_id="patient_id",
            rendering_npi=pl.coalesce("line_rendering", "claim_rendering", "billing_npi"),
            billing_npi="billing_npi", payer="payer",
            date_of_service="dos", service_end_date="dos_end", procedure_code="procedure_code",
            modifier_1="modifier_1", modifier_2="modifier_2", modifier_3="modifier_3", modifier_4="modifier_4",
            units=pl.when(pl.col("basis") == "MJ").then(pl.lit("1")).otherwise("quantity"),
            minutes=pl.when(pl.col("basis") == "MJ").then("quantity"),
            charge_amount="charge", place_of_service=pl.coalesce("line_pos", "claim_pos"),
            diagnosis_codes=pl.col("dx").list.drop_nulls().list.join(","),
            source_interchange="isa_ctrl", **{LINE: pl.col("seg")}))
        rejects.append(pl.concat([
            lines.filter(pl.col("error").is_not_null()).select(
                pl.col("seg").alias(LINE),
                raw_record=pl.concat_str([pl.lit("SV1 "), pl.col("procedure_code").fill_null("?")]),
                error=pl.concat_str([pl.lit("x12: claim "), pl.col("claim_id").fill_null("?"), pl.lit(": "), "error"])),
            bare]))
    frame = pl.concat(records) if records else pl.DataFrame()
    return frame.sort(LINE), pl.concat(rejects).sort(LINE), seps.warnings
