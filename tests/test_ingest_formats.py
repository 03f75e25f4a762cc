"""The typing query's format tests without regular expressions give the regular expressions' answers.

normalize.full_match answers ``regexp_full_match(x, pattern)`` with a GLOB where it can (exactly, or a
fast accept before the regular expression), and split_list builds a row of single-token modifier cells
without splitting them. Both are compared here with the plain regular-expression SQL, in DuckDB, on
hand-picked edge cases and on generated text.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimaudit.ingest import normalize

PATTERNS = sorted({*normalize.EXACT_GLOBS, *normalize.FAST_ACCEPT})
EDGES = ["", "0", "7", "15", "15.", "15.0", "15.00", "15.000", "15.001", "1.005", ".5", ".05", "5.", "1.2.3",
         "..", ".", "+5", "-5", "+-5", "$5", "$1,234.50", "1,234", "12,34", "1,2,3", " 5", "5 ", "5\n", "٣",
         "１２", "1e3", "0x1F", "NaN", "inf", "97110", "9711", "971100", "G0283", "g0283", "GP", "gp", "G", "GPX",
         "1234567893", "123456789", "12345678930", "1234567893.0", "11", "1", "111", "A1", "É1", "1É", "5\t",
         "9" * 40, "0" * 12 + ".00", "12.50", "12.5", "-12.50", "1,234.5678"]
ALPHABET = st.sampled_from(list("0123456789.,$+- AZaGPXé٣\n\t\\[]*?!"))


def compare(values: list[str | None], pattern: str) -> list[tuple]:
    """Rows where full_match and regexp_full_match disagree."""
    with duckdb.connect() as con:
        return con.execute(f"""SELECT x, want, got FROM (
                                   SELECT x, regexp_full_match(x, '{pattern}') AS want,
                                          {normalize.full_match('x', pattern)} AS got
                                   FROM (SELECT UNNEST($xs) AS x))
                               WHERE want IS DISTINCT FROM got""", {"xs": values}).fetchall()


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_format_test_gives_the_regular_expressions_answer_on_edge_cases(pattern):
    assert "regexp_full_match" not in normalize.full_match("x", pattern).split("ELSE")[0]  # a GLOB decides first
    assert compare([*EDGES, None], pattern) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(ALPHABET, max_size=12), min_size=1, max_size=200))
def test_each_format_test_gives_the_regular_expressions_answer_on_generated_text(values):
    for pattern in PATTERNS:
        assert compare(values, pattern) == [], pattern


def test_the_fast_accepts_take_the_common_values():
    """The common values (digits, one point) never reach a regular expression."""
    with duckdb.connect() as con:
        for pattern, value in ((normalize.EXACT_CENTS, "59.52"), (normalize.AMOUNT_FORMAT, "96.0"),
                               (normalize.INTEGER_FORMAT, "36"), (normalize.DECIMAL_FORMAT, "2")):
            fast = normalize.FAST_ACCEPT[pattern].format(x="x")
            assert con.execute(f"SELECT {fast} FROM (SELECT ? AS x)", [value]).fetchall() == [(True,)]


SEPARATORS = [r"[,;:| ]+", ",", ";", " ", "X", "P", "[0-9]", "", "G*", "^", "\\|"]
CELL = st.one_of(st.none(), st.sampled_from(["", "GP", "gp", "59", " XS ", "GP,59", "GP 59", "KX;", "G", "GPX",
                                             "X", "P9", "\u00a0CQ", "ab,cd", "A|B", "٣3"]),
                 st.text(st.sampled_from(list("GPX59 ,;|a")), max_size=6))


def lists(rows: list[list[str | None]], separator: str, token: str | None) -> list:
    cells = [f"upper(ca_text(c{i}))" for i in range(4)]
    sql = normalize.split_list(cells, "$sep", token=token)
    with duckdb.connect() as con:
        for macro in normalize.MACROS:
            con.execute(macro)
        return con.execute(f"SELECT {sql} FROM (SELECT UNNEST($c0) AS c0, UNNEST($c1) AS c1, UNNEST($c2) AS c2, "
                           "UNNEST($c3) AS c3, UNNEST($n) AS n) ORDER BY n",
                           {"sep": separator, "n": list(range(len(rows))),
                            **{f"c{i}": [r[i] for r in rows] for i in range(4)}}).fetchall()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(CELL, min_size=4, max_size=4), min_size=1, max_size=40), st.sampled_from(SEPARATORS))
def test_modifier_cells_give_the_same_list_with_or_without_splitting(rows, separator):
    token = None if normalize.splits(separator, normalize.MODIFIER_FORMAT) else normalize.MODIFIER_FORMAT
    assert lists(rows, separator, token) == lists(rows, separator, None)


def test_a_separator_that_can_split_a_modifier_takes_the_general_way():
    assert not normalize.splits(r"[,;:| ]+", normalize.MODIFIER_FORMAT)
    assert normalize.splits("X", normalize.MODIFIER_FORMAT)          # would split XS, XE, XU, XP
    assert normalize.splits("", normalize.MODIFIER_FORMAT)           # matches the empty text everywhere
    # had the fast way been taken with "X", the cell XS would stay whole: the general way splits it
    assert lists([["XS", None, None, None]], "X", None) == [(["S"],)]
