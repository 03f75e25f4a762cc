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
* provider discipline: the rendering provider's taxonomy (PRV*PE of the line, 2420A, else of the claim,
  2310B), else the billing provider's (PRV*BI, 2000A), through data/reference/taxonomy_disciplines.csv
  (111N chiropractor DC, 2251 PT, 225X OT, 235Z SLP, 20 physician MD); NULL when there is none or it is
  not listed.
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

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from pathlib import Path

import polars as pl

from claimaudit.resources import resource
from claimaudit.x12 import segments as sg
from claimaudit.x12.segments import element as _e
from claimaudit.x12.segments import nonempty as _ne
from claimaudit.x12.segments import trimmed as _ns

LINE = "__line"


@cache
def _taxonomy_prefixes() -> dict[int, dict[str, str]]:
    """Taxonomy code prefix -> provider discipline (data/reference/taxonomy_disciplines.csv), by length."""
    table = pl.read_csv(resource("data", "reference", "taxonomy_disciplines.csv"), infer_schema=False)
    by_length: dict[int, dict[str, str]] = {}
    for prefix, discipline_ in zip(table["taxonomy_prefix"], table["provider_discipline"], strict=True):
        by_length.setdefault(len(prefix), {})[prefix.upper()] = discipline_
    return by_length


def discipline(taxonomy: pl.Expr) -> pl.Expr:
    """The discipline of a provider taxonomy code: its longest listed prefix; NULL when none is listed."""
    code = taxonomy.str.to_uppercase()
    return pl.coalesce([code.str.slice(0, n).replace_strict(table, default=None, return_dtype=pl.String)
                        for n, table in sorted(_taxonomy_prefixes().items(), reverse=True)])


def _collect(plan: pl.LazyFrame) -> pl.DataFrame:
    """A piece's steps are lazy plans collected at the few points whose result is read twice. The
    in-memory engine: the default ("auto") was ~1.7x slower on these piece-sized plans."""
    return plan.collect(engine="in-memory")


def _context(df: pl.DataFrame, st_offset: int) -> pl.DataFrame:
    last = sg.last_position
    df = df.with_columns(st_no=(pl.col("tag") == "ST").cum_sum().cast(pl.Int64) + st_offset, st_seg=last("ST"),
                         hl_seg=last("HL"), clm_seg=last("CLM"), lx_seg=last("LX"))
    in_claim = pl.col("clm_seg").is_not_null() & (pl.col("clm_seg") > pl.col("hl_seg").fill_null(0)) & \
        (pl.col("clm_seg") > pl.col("st_seg").fill_null(0))
    in_line = in_claim & pl.col("lx_seg").is_not_null() & (pl.col("lx_seg") > pl.col("clm_seg"))
    return df.with_columns(clm_seg=pl.when(in_claim).then(pl.col("clm_seg")),
                           lx_seg=pl.when(in_line).then(pl.col("lx_seg")))


def _hl_table(tagged: sg.Segments) -> pl.LazyFrame:
    hl = tagged("HL").select("st_no", "seg", hl_id=_ns(1), parent=_ns(2), level=_ns(3))
    outside = pl.col("clm_seg").is_null() & pl.col("hl_seg").is_not_null()
    nm1 = tagged("NM1").filter(outside).with_columns(q=_e(1))

    def attr(rows: pl.LazyFrame, **cols: pl.Expr) -> pl.LazyFrame:
        return rows.group_by("hl_seg").agg([c.first().alias(n) for n, c in cols.items()])

    billing = attr(nm1.filter(pl.col("q") == "85"), billing_npi=pl.when(_e(8) == "XX").then(_ns(9)))
    billing_prv = attr(tagged("PRV").filter(outside).filter(_e(1) == "BI"), billing_taxonomy=_ns(3))
    member = attr(nm1.filter(pl.col("q") == "IL"), member_id=_ns(9))
    payer = attr(nm1.filter(pl.col("q") == "PR"), payer=_ne(3))
    dependent = attr(nm1.filter(pl.col("q") == "QC"), dep_name=pl.concat_str([_e(3), _e(4)], separator="|"))
    dob = attr(tagged("DMG").filter(outside), dob=_ne(2))
    for part in (billing, billing_prv, member, payer, dependent, dob):
        hl = hl.join(part, left_on="seg", right_on="hl_seg", how="left")
    # the parent is the latest earlier HL of the same transaction set whose id is this HL's parent id
    # (ids may be irregular or even repeat, positions never do)
    parents = hl.select("st_no", p_id="hl_id", p_seg="seg").sort("p_seg")
    return hl.sort("seg").join_asof(parents, left_on="seg", right_on="p_seg", by_left=["st_no", "parent"],
                                    by_right=["st_no", "p_id"], strategy="backward", allow_exact_matches=False,
                                    check_sortedness=False)


def _claims(tagged: sg.Segments, hl: pl.LazyFrame, comp: str) -> pl.LazyFrame:
    clm = tagged("CLM").select(
        "st_no", "hl_seg", clm_seg="seg", claim_id=_ne(1), claim_charge=_ne(2),
        claim_pos=_ne(5).str.split(comp).list.first())
    in_claim_only = pl.col("clm_seg").is_not_null() & pl.col("lx_seg").is_null()
    rendering = tagged("NM1").filter(in_claim_only).filter(_e(1) == "82").group_by("clm_seg").agg(
        claim_rendering=pl.when(_e(8) == "XX").then(_ns(9)).first())
    claim_prv = tagged("PRV").filter(in_claim_only).filter(_e(1) == "PE").group_by("clm_seg").agg(
        claim_taxonomy=_ns(3).first())
    dx = (tagged("HI").filter(in_claim_only)
          .select("clm_seg", "seg", codes=pl.col("el").list.slice(1))
          .explode("codes").filter(pl.col("codes") != "")
          .with_columns(pl.col("codes").str.split(comp).list.get(1, null_on_oob=True).alias("code"))
          .group_by("clm_seg").agg(pl.col("code").alias("dx_all")))      # rows are in file order: so are the codes
    clm = clm.join(rendering, on="clm_seg", how="left").join(claim_prv, on="clm_seg", how="left") \
        .join(dx, on="clm_seg", how="left")
    # climb up to three HL levels: the claim's HL, its parent, the grandparent
    carried = ["level", "billing_npi", "billing_taxonomy", "member_id", "payer", "dep_name", "dob", "p_seg"]
    levels = hl.select("seg", *carried)
    for i in (1, 2, 3):
        left = "hl_seg" if i == 1 else f"p_seg_{i - 1}"
        clm = clm.join(levels.rename({c: f"{c}_{i}" for c in carried}),
                       left_on=left, right_on="seg", how="left")

    def pick(level: str, col: str) -> pl.Expr:
        return pl.coalesce([pl.when(pl.col(f"level_{i}") == level).then(pl.col(f"{col}_{i}")) for i in (1, 2, 3)])

    dependent = pick("23", "dep_name").is_not_null()
    dep_key = pl.concat_str([pick("23", "dep_name"), pick("23", "dob").fill_null("")], separator="|")
    return clm.select(
        "st_no", "clm_seg", "claim_id", "claim_pos", "claim_rendering", "claim_taxonomy", "dx_all",
        billing_npi=pick("20", "billing_npi"), billing_taxonomy=pick("20", "billing_taxonomy"), payer=pick("22", "payer"),
        patient_id=pl.when(dependent).then(pl.concat_str([pick("22", "member_id"), pl.lit("-D"),
                                                          dep_key.hash().cast(pl.String).str.slice(0, 8)]))
        .otherwise(pick("22", "member_id")))


def _lines(tagged: sg.Segments, comp: str) -> pl.LazyFrame:
    in_line = pl.col("lx_seg").is_not_null()
    lx = tagged("LX").select(lx_seg="seg", line_number=_ne(1))
    sv1 = tagged("SV1").filter(in_line).select(
        "clm_seg", "lx_seg", "seg", composite=_ne(1).str.split(comp), charge=_ne(2), basis=_ne(3), quantity=_ne(4),
        line_pos=_ne(5), pointers=_ne(7).str.split(comp))
    # D8 = one date, RD8 = a range (start used, end kept); any other qualifier leaves the date empty,
    # so the line is quarantined as bad_date/missing rather than read as something it does not say
    first = pl.col("lx_seg").is_first_distinct()         # segments are in file order: the line's first one
    dtp = tagged("DTP").filter(in_line & (_e(1) == "472")).filter(first).select(
        "lx_seg", dos=pl.when(_e(2).is_in(["D8", "RD8"])).then(_ne(3).str.slice(0, 8)),
        dos_end=pl.when(_e(2) == "RD8").then(_ne(3).str.slice(-8)))
    rendering = tagged("NM1").filter(in_line & (_e(1) == "82")).filter(first).select(
        "lx_seg", line_rendering=pl.when(_e(8) == "XX").then(_ns(9)))
    line_prv = tagged("PRV").filter(in_line & (_e(1) == "PE")).filter(first).select("lx_seg", line_taxonomy=_ns(3))
    mods = {f"modifier_{i}": pl.col("composite").list.get(i + 1, null_on_oob=True) for i in (1, 2, 3, 4)}
    return (sv1.join(lx, on="lx_seg", how="left").join(dtp, on="lx_seg", how="left")
            .join(rendering, on="lx_seg", how="left").join(line_prv, on="lx_seg", how="left")
            .with_columns(qualifier=pl.col("composite").list.first(),
                          procedure_code=pl.col("composite").list.get(1, null_on_oob=True), **mods))


def _errors(df: pl.DataFrame, tagged: sg.Segments, seps: sg.Separators, path: Path) -> pl.LazyFrame:
    """Damage found in the segments: (st_no, clm_seg or NULL for the whole transaction set, reason)."""
    tag = pl.col("tag")

    def flag(rows: pl.LazyFrame, label: pl.Expr) -> pl.LazyFrame:
        return rows.select("st_no", "clm_seg", "seg", reason=label)

    billing = tagged("NM1").filter(pl.col("clm_seg").is_null()).filter(_e(1) == "85")
    clm, sv1 = tagged("CLM"), tagged("SV1")
    hi_claims = tagged("HI").filter(pl.col("clm_seg").is_not_null()).select("clm_seg").unique()
    n3_rows = tagged.frame("N3")["row"].implode()    # N4 right before an N3 that has no N3 before it
    found = pl.concat([
        flag(df.filter(sg.bad_tags(df)).lazy(),
             pl.format("segment {}: {} is not a segment identifier", "seg",
                       pl.when(tag == "").then(pl.lit("(empty)")).otherwise(pl.format("'{}'", tag.str.slice(0, 10))))),
        flag(billing.filter(pl.col("seg") != pl.col("seg").min().over("hl_seg")),
             pl.format("segment {}: a second billing provider NM1*85 in one HL loop", "seg")),
        flag(tagged("N4").filter((pl.col("row") + 1).is_in(n3_rows) & ~(pl.col("row") - 1).is_in(n3_rows)),
             pl.format("segment {}: N4 before N3 (segments out of order)", "seg")),
        flag(clm.filter(_ne(1).is_null() | _ne(2).is_null()),
             pl.format("segment {}: CLM01/CLM02 (claim id, charge) missing", "seg")),
        flag(clm.filter(_ne(5).is_null()), pl.format("segment {}: CLM05 (place of service) missing", "seg")),
        flag(sv1.filter((_e(1).str.split(seps.component).list.first() != "HC").fill_null(True)),
             pl.format("segment {}: SV101 is not an HCPCS (HC) procedure", "seg")),
        flag(clm.with_columns(clm_seg=pl.col("seg")).join(hi_claims, on="clm_seg", how="anti"),
             pl.format("segment {}: claim has no HI (diagnosis) segment", "seg")),
    ])
    # transaction sets: SE01 counts the segments from ST to SE (row = position among non-empty segments)
    st = tagged.frame("ST").select("st_no", st_seg="seg", st_row="row")
    se = tagged.frame("SE").select("st_no", se_row="row", se_count=_e(1).cast(pl.Int64, strict=False))
    sets = st.join(se, on="st_no", how="left")
    unclosed = sets.lazy().filter(pl.col("se_row").is_null()).select(
        "st_no", clm_seg=pl.lit(None, pl.Int64), seg="st_seg",
        reason=pl.format("segment {}: transaction set has no SE (cut short)", "st_seg"))
    # many real files carry a wrong SE01: worth a warning, not worth dropping claims
    miscounted = sets.filter(pl.col("se_count") != pl.col("se_row") - pl.col("st_row") + 1)
    for st_seg, said, counted in miscounted.select("st_seg", "se_count",
                                                   pl.col("se_row") - pl.col("st_row") + 1).iter_rows():
        seps.warnings.append(f"{path}: segment {st_seg}: SE01 says {said} segments, counted {counted}")
    return pl.concat([found, unclosed], how="vertical_relaxed")


def _piece(piece: str, before: int, piece_no: int, seps: sg.Separators, path: Path
           ) -> tuple[pl.DataFrame, pl.DataFrame, str | None]:
    """Records and rejects of one piece (whole transaction sets), and its last ISA13."""
    df = _context(sg.frame(piece, seps, before), piece_no << 32)
    tagged = sg.Segments(df, seps)                        # one pass; each step reads only its segments
    isa = tagged.frame("ISA").select(isa_seg="seg", isa_ctrl=_e(13))
    comp = seps.component
    # each claim's interchange: the last ISA before it (none in this piece: settled by read_837)
    claims = _claims(tagged, _hl_table(tagged), comp).sort("clm_seg").join_asof(
        isa.lazy(), left_on="clm_seg", right_on="isa_seg", strategy="backward").drop("isa_seg").pipe(_collect)
    lines = _lines(tagged, comp).pipe(_collect).join(claims, on="clm_seg", how="left")
    errors = _errors(df, tagged, seps, path).pipe(_collect)
    claim_errors = errors.filter(pl.col("clm_seg").is_not_null()).group_by("clm_seg").agg(
        claim_error=pl.col("reason").sort_by("seg").str.join("; "))
    set_errors = errors.filter(pl.col("clm_seg").is_null()).group_by("st_no").agg(
        set_error=pl.col("reason").sort_by("seg").str.join("; "))
    lines = lines.join(claim_errors, on="clm_seg", how="left").join(set_errors, on="st_no", how="left")
    lines = lines.with_columns(error=pl.coalesce("claim_error", "set_error"))
    # a dropped claim with no service line still counts: one reject for its CLM segment
    bare = (claims.join(lines.select("clm_seg").unique(), on="clm_seg", how="anti")
            .join(claim_errors, on="clm_seg", how="left").join(set_errors, on="st_no", how="left")
            .filter(pl.coalesce("claim_error", "set_error").is_not_null())
            .select(pl.col("clm_seg").alias(LINE), raw_record=pl.concat_str([pl.lit("CLM "), "claim_id"]),
                    error=pl.concat_str([pl.lit("x12: claim "), pl.col("claim_id").fill_null("?"), pl.lit(": "),
                                         pl.coalesce("claim_error", "set_error")])))
    # SV107 holds at most four pointers (1-based) into the claim's HI codes
    # (a pointer that is not a number from 1 up names no code)
    pointer = [pl.col("pointers").list.get(i, null_on_oob=True).cast(pl.Int32, strict=False) for i in range(4)]
    pointed = [pl.col("dx_all").list.get(pl.when(p >= 1).then(p - 1), null_on_oob=True) for p in pointer]
    good = lines.filter(pl.col("error").is_null())
    records = good.select(
        claim_id="claim_id", line_number="line_number", patient_id="patient_id",
        rendering_npi=pl.coalesce("line_rendering", "claim_rendering", "billing_npi"),
        billing_npi="billing_npi", payer="payer",
        date_of_service="dos", service_end_date="dos_end", procedure_code="procedure_code",
        modifier_1="modifier_1", modifier_2="modifier_2", modifier_3="modifier_3", modifier_4="modifier_4",
        units=pl.when(pl.col("basis") == "MJ").then(pl.lit("1")).otherwise("quantity"),
        minutes=pl.when(pl.col("basis") == "MJ").then("quantity"),
        charge_amount="charge", place_of_service=pl.coalesce("line_pos", "claim_pos"),
        diagnosis_codes=pl.when(pl.col("dx_all").is_not_null() & pl.col("pointers").is_not_null()).then(
            pl.concat_str(pointed, separator=",", ignore_nulls=True)),
        provider_discipline=discipline(pl.coalesce("line_taxonomy", "claim_taxonomy", "billing_taxonomy")),
        source_interchange="isa_ctrl", **{LINE: pl.col("seg")})
    rejects = pl.concat([
        lines.filter(pl.col("error").is_not_null()).select(
            pl.col("seg").alias(LINE),
            raw_record=pl.concat_str([pl.lit("SV1 "), pl.col("procedure_code").fill_null("?")]),
            error=pl.concat_str([pl.lit("x12: claim "), pl.col("claim_id").fill_null("?"), pl.lit(": "), "error"])),
        bare])
    last_isa = isa["isa_ctrl"][-1] if isa.height else None
    return records.sort(LINE), rejects.sort(LINE), last_isa


def iter_837(path: Path, *, threads: int = 3, warnings: list[str] | None = None
             ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """The file's (records, rejects) piece by piece, in file order: memory follows the piece size.

    Records are canonical string columns + __line (the SV1 segment position); rejects are
    (__line, raw_record, error). Pieces are independent (whole transaction sets), so ``threads`` of
    them are parsed at once (Polars releases the GIL); at most ``threads + 1`` pieces are in flight.
    The reader's warnings are appended to ``warnings`` once the file is read."""
    seps = sg.separators(path, sg.head(path))
    pending: deque[Future] = deque()
    interchange: str | None = None          # a piece that starts inside an interchange takes its ISA13 from before

    def settled(result: tuple[pl.DataFrame, pl.DataFrame, str | None]) -> tuple[pl.DataFrame, pl.DataFrame]:
        nonlocal interchange
        records, rejects, last = result
        records = records.with_columns(pl.col("source_interchange").fill_null(pl.lit(interchange, pl.String)))
        interchange = last or interchange
        return records, rejects

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for piece_no, (piece, before) in enumerate(sg.iter_pieces(path, seps)):
            if piece_no == 0:           # the separators must be settled before pieces run in parallel
                sg.component_separator(path, piece, seps)
            pending.append(pool.submit(_piece, piece, before, piece_no, seps, path))
            del piece
            while len(pending) > threads:
                yield settled(pending.popleft().result())
        while pending:
            yield settled(pending.popleft().result())
    if warnings is not None:
        warnings += sorted(seps.warnings)


def read_837(path: Path, *, threads: int = 3) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
    """The whole file at once: records, rejects and warnings (``iter_837`` for bounded memory)."""
    warnings: list[str] = []
    pieces = list(iter_837(path, threads=threads, warnings=warnings))
    # pieces are in file order and each is sorted: no global sort (it would copy every line again)
    records = pl.concat([r for r, _ in pieces], rechunk=False) if pieces else pl.DataFrame()
    rejects = pl.concat([j for _, j in pieces], rechunk=False) if pieces else pl.DataFrame()
    return records, rejects, warnings


def write_837_parquet(path: Path, out: Path, *, threads: int = 3) -> dict:
    """Stream an 837P file into ``out/lines.parquet`` and ``out/rejects.parquet`` (canonical string
    columns; ``source_row`` = the SV1 segment position), one piece at a time: memory stays flat
    whatever the file's size. Returns the counts and the reader's warnings."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    writers: dict[str, pq.ParquetWriter] = {}
    counts = {"lines": 0, "rejects": 0}
    shapes: dict[str, pl.DataFrame] = {}

    def arrow(frame: pl.DataFrame):
        return frame.rename({LINE: "source_row"}).to_arrow(compat_level=pl.CompatLevel.oldest())

    try:
        for records, rejects in iter_837(path, threads=threads, warnings=warnings):
            for name, frame in (("lines", records), ("rejects", rejects)):
                shapes.setdefault(name, frame.clear())
                if not frame.height:
                    continue
                table = arrow(frame)
                if name not in writers:
                    writers[name] = pq.ParquetWriter(out / f"{name}.parquet", table.schema, compression="zstd")
                writers[name].write_table(table.cast(writers[name].schema))
                counts[name] += frame.height
        for name, empty in shapes.items():          # no rows of a kind: an empty file, not a missing one
            if name not in writers:
                pq.write_table(arrow(empty), out / f"{name}.parquet")
    finally:
        for writer in writers.values():
            writer.close()
    return {**counts, "warnings": warnings}
