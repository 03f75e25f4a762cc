"""Type raw text records into canonical claim lines, or quarantine them with a reason, in DuckDB.

One query per file (:func:`typed_sql`) reads the raw table (positional columns ``c1..cN``) and
yields the canonical columns, the record's ``source_row`` and ``reason``: the *first* failing check,
in a closed, documented vocabulary (docs/mappings.md, "Quarantine reasons"). Every value is kept
exactly or refused: units and amounts must be plain decimals with at most two decimal places that
are not zeros (``1.005`` is ``units_precision``, never 1.00 or 1.01), amounts may carry ``$`` and
correctly grouped thousands separators (``$1,2,3`` is ``bad_amount``), integers may carry a
spreadsheet's ``.0``. The query is built from a closed set of pieces: the positional column names
and the canonical names; everything that comes from the mapping (constants, date formats,
separators, payer map, the default profile) is a bound parameter.
"""

from __future__ import annotations

import functools

import duckdb

from claimaudit.ingest.mapping import Mapping
from claimaudit.ingest.readers import RawFile, raw_rows_sql
from claimaudit.schema import CLAIM_LINE_COLUMNS, MAX_MODIFIERS, REQUIRED_COLUMNS

CODE_FORMAT = "[0-9A-Z]{5}"
MODIFIER_FORMAT = "[0-9A-Z]{2}"
NPI_FORMAT = "[0-9]{10}"
INTEGER_FORMAT = r"[+-]?[0-9]+(\.0*)?"                       # 15, or 15.0 from a spreadsheet cell
DECIMAL_FORMAT = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
EXACT_CENTS = r"[+-]?([0-9]+(\.[0-9]{0,2}0*)?|\.[0-9]{1,2}0*)"   # no non-zero digit after the hundredths
AMOUNT_FORMAT = r"[+-]?\$?[+-]?(([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]*)?|\.[0-9]+)"
TIME_SUFFIX = r"[ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$"
POS_FORMAT = "[0-9]{2}"

# Format tests that need no regular expression. DuckDB's regexp_full_match costs ~45 ns a value on this
# machine (0.45 s per column of a 10M-line extract), a GLOB ~5 ns. Fixed-length patterns of one
# character class are a GLOB exactly; for the others a GLOB accepts the usual shape (digits, one
# point) and only what it does not accept meets the regular expression. Each fast test implies its
# pattern, so the answer is the pattern's answer (tests/test_ingest_formats.py checks every pattern
# on generated text).
_DIGITS = "{x} GLOB '[0-9]*' AND {x} NOT GLOB '*[!0-9]*'"                       # 1+ digits, nothing else
_PLAIN = "{x} GLOB '[0-9]*' AND {x} NOT GLOB '*[!0-9.]*' AND {x} NOT GLOB '*.*.*'"  # digits, at most one point
EXACT_GLOBS = {CODE_FORMAT: "[0-9A-Z]" * 5, MODIFIER_FORMAT: "[0-9A-Z]" * 2, NPI_FORMAT: "[0-9]" * 10,
               POS_FORMAT: "[0-9]" * 2}
FAST_ACCEPT = {
    INTEGER_FORMAT: _DIGITS,
    DECIMAL_FORMAT: _PLAIN,
    AMOUNT_FORMAT: _PLAIN,
    # ...with at most two digits after the point
    EXACT_CENTS: _PLAIN + " AND ({x} NOT GLOB '*.*' OR {x} GLOB '*.' OR {x} GLOB '*.[0-9]' OR {x} GLOB '*.[0-9][0-9]')",
}


def full_match(x: str, pattern: str) -> str:
    """SQL for ``regexp_full_match(x, pattern)`` (NULL stays NULL), without the regular expression where
    a GLOB gives the same answer. ``x`` appears several times in a fast accept: pass a column name."""
    if pattern in EXACT_GLOBS:
        return f"({x} GLOB '{EXACT_GLOBS[pattern]}')"
    if pattern in FAST_ACCEPT:
        return f"(CASE WHEN {FAST_ACCEPT[pattern].format(x=x)} THEN true ELSE regexp_full_match({x}, '{pattern}') END)"
    return f"regexp_full_match({x}, '{pattern}')"

# Text helpers shared by every file's query (temporary macros of the ingest connection).
MACROS = [
    # trimmed text, empty = NULL (spaces, tabs, line breaks and the no-break space of spreadsheets)
    "CREATE OR REPLACE TEMP MACRO ca_text(x) AS "
    r"nullif(regexp_replace(x, '^[\s\x{a0}\x{0b}]+|[\s\x{a0}\x{0b}]+$', '', 'g'), '')",
    # a spreadsheet's 1234567893.0 is the integer it shows
    r"CREATE OR REPLACE TEMP MACRO ca_unfloat(x) AS regexp_replace(x, '\.0*$', '')",
]

SOURCE_COLUMNS = [c for c in CLAIM_LINE_COLUMNS if c not in ("source_file", "source_row", "modifiers",
                                                           "diagnosis_codes")]


def split_list(cells: list[str], sep: str, *, strip_dots: bool = False, token: str | None = None) -> str:
    """The cells' items as one list: each cell split by ``sep`` (a bound regular expression), each item
    trimmed (and its points removed), empty ones dropped. ``token``: an EXACT_GLOBS pattern that
    ``sep`` never matches in (see :func:`splits`). A row whose cells are all empty or one such token
    each is built without splitting (the split of text it does not match in is that text)."""
    parts = ", ".join(f"coalesce(regexp_split_to_array({c}, {sep}), []::VARCHAR[])" for c in cells)
    item = "replace(ca_text(m), '.', '')" if strip_dots else "ca_text(m)"
    general = f"list_filter(list_transform(flatten([{parts}]), lambda m: {item}), lambda m: m IS NOT NULL AND m <> '')"
    if token is None:
        return general
    one_each = " AND ".join(f"coalesce({full_match(c, token)}, true)" for c in cells)
    return f"CASE WHEN {one_each} THEN list_filter([{', '.join(cells)}], lambda m: m IS NOT NULL) ELSE {general} END"


@functools.lru_cache(maxsize=32)
def splits(separator: str, token: str) -> bool:
    """Whether the separator (a regular expression) matches anywhere in some text of the ``token``
    pattern's shape: every such text of printable ASCII (what the GLOB accepts) is tried, with
    DuckDB's own regular expressions."""
    glob = EXACT_GLOBS[token]
    length = glob.count("[")
    if length > 3:                              # too many texts to try: the general way
        return True
    chars = ", ".join(f"range(32, 127) c{i}(c{i})" for i in range(length))
    text = " || ".join(f"chr(c{i}::INTEGER)" for i in range(length))
    with duckdb.connect() as con:
        return bool(con.execute(f"SELECT coalesce(bool_or(regexp_matches(t, $sep)), false) FROM "
                                f"(SELECT {text} AS t FROM {chars}) WHERE t GLOB $glob",
                                {"sep": separator, "glob": glob}).fetchall()[0][0])


class _Query:
    """Builds one file's typing query: SQL text from closed pieces, values as named parameters."""

    def __init__(self, raw: RawFile, mapping: Mapping, prefix: str):
        self.raw, self.mapping, self.prefix = raw, mapping, prefix
        self.params: dict[str, object] = {}

    def param(self, name: str, value) -> str:
        key = f"{self.prefix}_{name}"
        self.params[key] = value
        return f"${key}"

    def column(self, source: str) -> str | None:
        position = self.raw.header.position(source)
        return f"c{position}" if position else None

    def text(self, canonical: str) -> str:
        """The canonical column's trimmed text: a raw column, a constant, or NULL."""
        if canonical in self.mapping.constants:
            return f"ca_text({self.param('const_' + canonical, self.mapping.constants[canonical])})"
        col = self.column(self.mapping.source_for(canonical))
        return f"ca_text({col})" if col else "NULL::VARCHAR"

    def listing(self, sources: list[str], separator: str, name: str, strip_dots: bool = False,
                token: str | None = None) -> str:
        cols = [c for c in (self.column(s) for s in sources) if c]
        if not cols:
            return "[]::VARCHAR[]"
        return split_list([f"upper(ca_text({c}))" for c in cols], self.param(name + "_separator", separator),
                          strip_dots=strip_dots, token=token if token and not splits(separator, token) else None)

    def date(self, text: str, canonical: str) -> str:
        """First format that parses; a year before 1900 counts as a miss (``%Y`` reads '3/6/24' as year 24).

        Usually one try_strptime over the list of formats (the first that parses) settles it; only when
        that gives no date from 1900 on are the formats tried one by one. A CASE, because DuckDB
        evaluates every argument of coalesce (measured: 2.4 s against 0.05 s per 1M lines)."""
        formats = self.mapping.formats_for(canonical)
        if not formats:
            return "NULL::DATE"
        base = f"regexp_replace({text}, '{TIME_SUFFIX}', '')"
        floor = "TIMESTAMP '1899-12-31'"          # a parse before 1900 becomes the floor, then NULL

        def parsed(fmt: str) -> str:
            return f"nullif(greatest(try_strptime({base}, {fmt}), {floor}), {floor})::DATE"
        fast = parsed(self.param(f"{canonical}_formats", formats))
        one_by_one = [parsed(self.param(f"{canonical}_format_{i}", f)) for i, f in enumerate(formats)]
        return f"CASE WHEN {fast} IS NOT NULL THEN {fast} ELSE coalesce({', '.join(one_by_one)}) END"


def typed_sql(raw: RawFile, mapping: Mapping, *, default_profile: str, prefix: str,
              only: str | None = None) -> tuple[str, dict]:
    """One file's SELECT: file_index, ord, source_file, source_row, the canonical columns, reason.
    ``only``: a fixed predicate on the raw records' ``ord`` (the records to type)."""
    q = _Query(raw, mapping, prefix)
    t = {c: q.text(c) for c in SOURCE_COLUMNS}
    mod_sources = [mapping.modifier_column] if mapping.modifier_column else mapping.modifier_columns
    modifiers = q.listing(mod_sources, mapping.modifier_separator, "modifier", token=MODIFIER_FORMAT)
    diagnoses = q.listing(mapping.diagnosis_columns, mapping.diagnosis_separator, "diagnosis", strip_dots=True)
    source_file = q.param("source_file", raw.source_file)
    default = q.param("default_profile", default_profile)
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping.constants]

    def bad(text_col: str, typed_col: str) -> str:
        return f"({text_col} IS NOT NULL AND {typed_col} IS NULL)"

    checks = [
        *[(f"t_{c} IS NULL", f"'missing_required:{c}'") for c in missing],
        (f"{bad('t_line_number', 'line_number')} OR line_number <= 0", "'bad_integer:line_number'"),
        (bad("t_date_of_service", "date_of_service"), "'bad_date:date_of_service'"),
        (bad("t_service_end_date", "service_end_date"), "'bad_date:service_end_date'"),
        (f"NOT {full_match('procedure_code', CODE_FORMAT)}", "'bad_code_format'"),
        (f"t_units IS NOT NULL AND NOT {full_match('t_units', DECIMAL_FORMAT)}", "'bad_number:units'"),
        ("t_units IS NOT NULL AND NOT ok_units_cents", "'units_precision'"),
        (bad("t_units", "units"), "'bad_number:units'"),
        ("units <= 0", "'non_positive_units'"),
        (f"NOT {full_match('rendering_npi', NPI_FORMAT)}", "'bad_npi_format:rendering_npi'"),
        (f"billing_npi IS NOT NULL AND NOT {full_match('billing_npi', NPI_FORMAT)}",
         "'bad_npi_format:billing_npi'"),
        (f"len(modifiers) > {MAX_MODIFIERS}", "'too_many_modifiers'"),
        (f"len(list_filter(modifiers, lambda m: NOT {full_match('m', MODIFIER_FORMAT)})) > 0",
         "'bad_modifier_format'"),
        (f"{bad('t_minutes', 'minutes')} OR minutes < 0", "'bad_integer:minutes'"),
        (f"{bad('t_assistant_minutes', 'assistant_minutes')} OR assistant_minutes < 0",
         "'bad_integer:assistant_minutes'"),
    ]
    for amount in ("charge_amount", "allowed_amount"):
        checks += [
            (f"t_{amount} IS NOT NULL AND NOT ok_{amount}_format", f"'bad_amount:{amount}'"),
            (f"t_{amount} IS NOT NULL AND NOT ok_{amount}_cents",
             f"'amount_precision:{amount}'"),
            (bad(f"t_{amount}", amount), f"'bad_amount:{amount}'"),
        ]
    checks += [
        (f"place_of_service IS NOT NULL AND NOT {full_match('place_of_service', POS_FORMAT)}",
         "'bad_place_of_service'"),
        ("profile NOT IN (SELECT profile FROM ca_known_profiles)", "'unknown_profile:' || profile"),
    ]
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {label}" for cond, label in checks) + " END"

    def integer(col: str) -> str:
        return (f"CASE WHEN {full_match('t_' + col, INTEGER_FORMAT)} "
                f"THEN TRY_CAST(ca_unfloat(t_{col}) AS INTEGER) END")

    def amount(col: str) -> str:
        return (f"CASE WHEN ok_{col}_format AND ok_{col}_cents "
                f"THEN TRY_CAST(n_{col} AS DECIMAL(12,2)) END")

    sql = f"""
    SELECT {int(raw.file_index)} AS file_index, ord, {source_file} AS source_file, source_row,
           claim_id, line_number, patient_id, rendering_npi, billing_npi, payer, profile, date_of_service,
           procedure_code, modifiers, units, minutes, charge_amount, allowed_amount, place_of_service,
           diagnosis_codes, provider_discipline, assistant_minutes, service_end_date, source_interchange,
           {reason} AS reason
    FROM (
        SELECT *,
               t_claim_id AS claim_id,
               {integer('line_number')} AS line_number,
               t_patient_id AS patient_id,
               ca_unfloat(t_rendering_npi) AS rendering_npi,
               ca_unfloat(t_billing_npi) AS billing_npi,
               t_payer AS payer,
               coalesce(lower(t_profile), pm_profile, {default}) AS profile,
               {q.date('t_date_of_service', 'date_of_service')} AS date_of_service,
               upper(t_procedure_code) AS procedure_code,
               t_modifiers AS modifiers,
               CASE WHEN ok_units_cents THEN TRY_CAST(t_units AS DECIMAL(9,2)) END AS units,
               {integer('minutes')} AS minutes,
               {amount('charge_amount')} AS charge_amount,
               {amount('allowed_amount')} AS allowed_amount,
               CASE WHEN length(ca_unfloat(t_place_of_service)) = 1 THEN '0' || ca_unfloat(t_place_of_service)
                    ELSE ca_unfloat(t_place_of_service) END AS place_of_service,
               t_diagnosis_codes AS diagnosis_codes,
               upper(t_provider_discipline) AS provider_discipline,
               {integer('assistant_minutes')} AS assistant_minutes,
               {q.date('t_service_end_date', 'date_of_service')} AS service_end_date,
               t_source_interchange AS source_interchange
        FROM (
            -- each format test once: the typing above and the reasons below read the same flags
            SELECT *, {full_match('t_units', EXACT_CENTS)} AS ok_units_cents,
                      {full_match('t_charge_amount', AMOUNT_FORMAT)} AS ok_charge_amount_format,
                      {full_match('n_charge_amount', EXACT_CENTS)} AS ok_charge_amount_cents,
                      {full_match('t_allowed_amount', AMOUNT_FORMAT)} AS ok_allowed_amount_format,
                      {full_match('n_allowed_amount', EXACT_CENTS)} AS ok_allowed_amount_cents
            FROM (
                SELECT *, replace(replace(t_charge_amount, '$', ''), ',', '') AS n_charge_amount,
                          replace(replace(t_allowed_amount, '$', ''), ',', '') AS n_allowed_amount
                FROM (SELECT ord, src_row AS source_row, {', '.join(f'{expr} AS t_{name}' for name, expr in t.items())},
                             {modifiers} AS t_modifiers, {diagnoses} AS t_diagnosis_codes
                      FROM {raw_rows_sql(raw, '$run_id')}{f' WHERE {only}' if only else ''})
            )
        ) LEFT JOIN (SELECT payer_key AS pm_key, profile AS pm_profile FROM ca_payer_map) ON pm_key = upper(t_payer)
    )"""
    return sql, q.params


def prepare(con: duckdb.DuckDBPyConnection, mapping: Mapping, known_profiles: set[str]) -> None:
    """The ingest connection's macros and the two small lookup tables the typing queries read."""
    for macro in MACROS:
        con.execute(macro)
    con.execute("CREATE OR REPLACE TEMP TABLE ca_known_profiles (profile VARCHAR)")
    con.executemany("INSERT INTO ca_known_profiles VALUES (?)", [[p] for p in sorted(known_profiles)])
    con.execute("CREATE OR REPLACE TEMP TABLE ca_payer_map (payer_key VARCHAR PRIMARY KEY, profile VARCHAR)")
    if mapping.payer_profiles:
        con.executemany("INSERT INTO ca_payer_map VALUES (?, ?)", [[k, v] for k, v in mapping.payer_profiles.items()])
