"""CMS reference files in their published layouts: the real excerpts, zip/xlsx round trips, versions."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import openpyxl
import pytest

from claimaudit.errors import ReferenceDataError
from claimaudit.refdata import ensure_reference, import_paths, list_reference
from claimaudit.refdata.cms import ptp_version_from_name
from claimaudit.refdata.store import parse_member
from claimaudit.warehouse import connect
from conftest import MUE_EXCERPT, PTP_EXCERPT


def test_ptp_excerpt_rows_dates_indicators_and_cut_last_row():
    parsed = parse_member(PTP_EXCERPT.name, PTP_EXCERPT.read_bytes())
    rows = parsed.rows
    assert (parsed.kind, parsed.version, parsed.part) == ("ptp", "v322r0", "f1")
    assert (parsed.coverage_start, parsed.coverage_end) == (date(2026, 7, 1), date(2026, 9, 30))
    # 161 physical lines: 6 of preamble and wrapped header, 154 rows, and line 161 cut mid-line
    assert rows.height == 154
    assert parsed.bad_rows == [{"line": 161, "reason": "truncated_row: the file ends mid-line"}]
    first = rows.row(0, named=True)
    assert first == {"column_1": "0001A", "column_2": "0591T", "prior_1996": False,
                     "effective_date": date(2022, 1, 1), "deletion_date": date(2023, 12, 31),
                     "modifier_indicator": 1, "rationale": "CPT Manual or CMS manual coding instruction",
                     "source_line": 7}
    counts = dict(rows.group_by("modifier_indicator").len().iter_rows())
    assert counts == {0: 9, 1: 139, 9: 6}
    assert rows.filter(rows["deletion_date"].is_null()).height == 66          # '*' = not deleted
    nine = rows.filter(rows["modifier_indicator"] == 9)
    assert (nine["effective_date"] == nine["deletion_date"]).all()             # 6 of 6, as the doc says
    last = rows.row(-1, named=True)
    assert (last["column_1"], last["column_2"], last["deletion_date"], last["source_line"]) == \
        ("0001U", "81166", None, 160)


def test_mue_excerpt_rows_and_adjudication_indicators():
    parsed = parse_member(MUE_EXCERPT.name, MUE_EXCERPT.read_bytes())
    assert (parsed.kind, parsed.version, parsed.coverage_start) == ("mue", "2026-07-01", date(2026, 7, 1))
    rows = parsed.rows
    assert rows.height == 44 and parsed.bad_rows == []
    assert rows.row(0, named=True) == {
        "procedure_code": "0001U", "mue_value": 1, "mue_adjudication_indicator": 2,
        "mue_adjudication_text": "2 Date of Service Edit: Policy", "rationale": "Code Descriptor / CPT Instruction",
        "source_line": 10}
    assert rows["source_line"].to_list()[-1] == 53                     # the quoted preamble spans 7 lines
    assert set(rows["mue_adjudication_indicator"].to_list()) == {2, 3}
    assert rows.filter(rows["procedure_code"] == "0009U")["mue_value"].item() == 2


@pytest.mark.parametrize("name, expected", [
    ("ccipra-v322r0-f1.txt", ("v322r0", "f1", date(2026, 7, 1), date(2026, 9, 30))),
    ("ccipra-v310r0-f4.TXT", ("v310r0", "f4", date(2025, 1, 1), date(2025, 3, 31))),
    ("ccipra-v323r1-f2.xlsx", ("v323r1", "f2", date(2026, 10, 1), date(2026, 12, 31))),
    ("notes.txt", None),
])
def test_ptp_version_from_cms_name(name, expected):
    assert ptp_version_from_name(name) == expected


def _xlsx_from_ptp_excerpt() -> bytes:
    """The excerpt re-laid as CMS's .xlsx: preamble, and a header spread over four sheet rows."""
    wb = openpyxl.Workbook()
    ws = wb.active
    text = PTP_EXCERPT.read_bytes().decode("latin-1").replace("\r\n", "\n")
    for line in text.split("\n")[:-1]:                                  # without the cut last line
        ws.append([cell if cell != "" else None for cell in line.split("\t")])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_ptp_xlsx_round_trip_matches_text(tmp_path):
    txt = parse_member(PTP_EXCERPT.name, PTP_EXCERPT.read_bytes())
    xlsx = parse_member("ccipra-v322r0-f1.xlsx", _xlsx_from_ptp_excerpt())
    assert xlsx.rows.height == 154 and xlsx.bad_rows == []
    cols = ["column_1", "column_2", "effective_date", "deletion_date", "modifier_indicator", "rationale"]
    assert xlsx.rows.select(cols).equals(txt.rows.select(cols))


def test_mue_xlsx_round_trip(tmp_path):
    csv_rows = parse_member(MUE_EXCERPT.name, MUE_EXCERPT.read_bytes()).rows
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Current Procedural Terminology (CPT) codes ... copyright 2025 American Medical Association."])
    ws.append(["HCPCS/\nCPT Code", "Practitioner Services MUE Values", "MUE Adjudication Indicator", "MUE Rationale"])
    for r in csv_rows.iter_rows(named=True):
        ws.append([r["procedure_code"], r["mue_value"], r["mue_adjudication_text"], r["rationale"]])
    buf = io.BytesIO()
    wb.save(buf)
    parsed = parse_member("MCR_MUE_PractitionerServices_Eff_07-01-2026.xlsx", buf.getvalue())
    assert parsed.rows.drop("source_line").equals(csv_rows.drop("source_line"))
    assert parsed.rows["source_line"][0] == 3


def test_zip_import_prefers_txt_over_xlsx_and_is_idempotent(tmp_path, db):
    archive = tmp_path / "PTP-practitioner-v322r0.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ccipra-v322r0-f1.txt", PTP_EXCERPT.read_bytes())
        zf.writestr("ccipra-v322r0-f1.xlsx", _xlsx_from_ptp_excerpt())
        zf.writestr("readme.pdf", b"%PDF-1.4")
    mue = tmp_path / "MUE.zip"
    with zipfile.ZipFile(mue, "w") as zf:
        zf.writestr("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", MUE_EXCERPT.read_bytes())
    with connect(db) as con:
        first = import_paths(con, [archive, mue])
        assert [(r.kind, r.version, r.part, r.rows_loaded, r.rows_bad, r.skipped) for r in first] == [
            ("ptp", "v322r0", "f1", 154, 1, False), ("mue", "2026-07-01", None, 44, 0, False)]
        again = import_paths(con, [archive, mue, PTP_EXCERPT])           # same bytes by another route
        assert all(r.skipped for r in again)
        assert con.execute("SELECT count(*) FROM ref_ptp").fetchone()[0] == 154
        assert con.execute("SELECT count(*) FROM ref_mue").fetchone()[0] == 44
        assert "line 161 truncated_row" in first[0].line()


def test_starter_set_is_used_until_cms_files_are_loaded(db):
    with connect(db) as con:
        ensure_reference(con)
        versions = con.execute("SELECT kind, version, is_starter FROM ref_versions ORDER BY kind").fetchall()
        assert versions == [("mue", "starter-mue-2017", True), ("ptp", "starter-ptp-2026", True)]
        import_paths(con, [PTP_EXCERPT])
        ensure_reference(con)                                              # no-op now for PTP
        versions = con.execute("SELECT kind, version, is_starter FROM ref_versions ORDER BY kind").fetchall()
        assert versions == [("mue", "starter-mue-2017", True), ("ptp", "v322r0", False)]
        listing = {(r["kind"], r["version"]): r["status"] for r in list_reference(con).iter_rows(named=True)}
        assert listing[("ptp", "starter-ptp-2026")] == "superseded by CMS files"
        # the shared excerpt is part 1 of 4, and cut mid-row: never used as the release
        assert listing[("ptp", "v322r0")] == ("NOT USED: release v322r0 incomplete: parts f2, f3, f4 missing; "
                                              "f1 truncated")


def test_mue_coverage_runs_until_the_next_loaded_version(tmp_path, db):
    later = tmp_path / "MCR_MUE_PractitionerServices_Eff_10-01-2026.csv"
    later.write_bytes(MUE_EXCERPT.read_bytes().replace(b"0001U,1,", b"0001U,3,"))
    with connect(db) as con:
        import_paths(con, [MUE_EXCERPT, later])
        rows = con.execute("SELECT version, coverage_start, coverage_end FROM ref_versions WHERE kind = 'mue' "
                           "ORDER BY coverage_start").fetchall()
    assert rows == [("2026-07-01", date(2026, 7, 1), date(2026, 9, 30)), ("2026-10-01", date(2026, 10, 1), None)]


@pytest.mark.parametrize("name, data, message", [
    ("ccipra-v322r0-f1.pdf", b"%PDF", "unsupported reference file type .pdf"),
    ("random.txt", b"hello\tworld\r\n", "neither a CMS PTP nor an MUE file"),
    ("ccipra-v322r0-f1.txt", MUE_EXCERPT.read_bytes(), "the name says PTP but the content is a MUE file"),
    ("my-ptp.txt", PTP_EXCERPT.read_bytes(), "cannot tell the PTP version from the file name"),
    ("ccipra-v322r0-f1.xlsx", b"not a workbook", "not a readable .xlsx workbook"),
    ("ccioph-v322r0-f1.txt", PTP_EXCERPT.read_bytes(), "only the practitioner PTP tables"),
])
def test_unreadable_reference_files_say_why(name, data, message):
    with pytest.raises(ReferenceDataError, match=message.replace(".", r"\.")) as info:
        parse_member(name, data)
    assert str(info.value).startswith(name)


def test_version_option_names_a_renamed_file():
    parsed = parse_member("my-ptp.txt", PTP_EXCERPT.read_bytes(), version="v322r0")
    assert (parsed.version, parsed.coverage_end) == ("v322r0", date(2026, 9, 30))


# ---- partial is not complete (issue 13)

THERAPY_PAIR = "97140\t97530\t\t20000101\t*\t1\tMutually exclusive procedures"


def _sample_ptp_findings(summary_dir) -> set:
    import polars as pl

    f = pl.read_parquet(summary_dir / "findings.parquet").filter(pl.col("family") == "ncci_ptp")
    return {(r["rule_id"], r["claim_id"], r["line_number"]) for r in f.iter_rows(named=True)}


def test_one_part_of_a_release_is_never_used_as_the_whole_release(tmp_path):
    from claimaudit import pipeline
    from conftest import SAMPLE, ptp_fixture

    db = tmp_path / "w.duckdb"
    first = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r1", scope="c", data_quality=False)
    found = _sample_ptp_findings(tmp_path / "r1")
    assert found                                                      # the starter set's pairs fire
    f1 = ptp_fixture(tmp_path, [THERAPY_PAIR], name="ccipra-v322r0-f1.txt")
    with connect(db) as con:
        (result,) = import_paths(con, [f1])
        status = {(r["kind"], r["version"]): r["status"] for r in list_reference(con).iter_rows(named=True)}
    assert status[("ptp", "v322r0")] == "NOT USED: release v322r0 incomplete: parts f2, f3, f4 missing"
    second = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r2", scope="c", data_quality=False)
    assert _sample_ptp_findings(tmp_path / "r2") == set()
    ptp = [c for c in second["unchecked"] if c["family"] == "ncci_ptp"]
    reasons = {c["reason"]: c["lines"] for c in ptp}
    assert reasons["release v322r0 incomplete: parts f2, f3, f4 missing"] == second["unchecked_lines"]["ptp"] - \
        reasons.get("no NCCI PTP release loaded covers the date", 0)
    assert second["history"]["resolved"] == 0 and second["history"]["not_compared"] >= len(found)

    parts = [ptp_fixture(tmp_path, [f"0000{n}\t00002\t\t20000101\t*\t1"], name=f"ccipra-v322r0-f{n}.txt")
             for n in (2, 3, 4)]
    with connect(db) as con:
        import_paths(con, parts)
        status = {(r["kind"], r["version"]): r["status"] for r in list_reference(con).iter_rows(named=True)}
    assert status[("ptp", "v322r0")] == "in use"
    third = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "r3", scope="c", data_quality=False)
    # the 97140/97530 pair checks again (TV-08 and TV-09 in the sample)
    assert {("PTP-002", "CLM001309", 2), ("PTP-003", "CLM001310", 2)} <= _sample_ptp_findings(tmp_path / "r3")
    assert not [c for c in third["unchecked"] if "incomplete" in c["reason"]]
    assert first["run_id"] != third["run_id"]


def test_the_part_count_comes_from_the_zip_or_the_user(tmp_path, db):
    from conftest import ptp_fixture

    archive = tmp_path / "ccipra-v322r0.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for n in (1, 2):
            rows = [THERAPY_PAIR.replace("97140", f"9714{n}")]             # each part holds other pairs
            zf.write(ptp_fixture(tmp_path, rows, name=f"ccipra-v322r0-f{n}.txt"), f"ccipra-v322r0-f{n}.txt")
    with connect(db) as con:
        import_paths(con, [archive])
        assert con.execute("SELECT parts_expected, incomplete_reason FROM ref_versions WHERE version = 'v322r0'"
                           ).fetchall() == [(2, None)]
        import_paths(con, [ptp_fixture(tmp_path, [THERAPY_PAIR], name="ccipra-v321r0-f1.txt")], parts=1)
        assert con.execute("SELECT incomplete_reason FROM ref_versions WHERE version = 'v321r0'").fetchall() == [(None,)]


def test_a_corrected_redownload_replaces_the_part_and_says_so(tmp_path, db):
    from conftest import ptp_fixture

    first = ptp_fixture(tmp_path, [THERAPY_PAIR])
    with connect(db) as con:
        import_paths(con, [first])
        corrected = ptp_fixture(tmp_path, [THERAPY_PAIR.replace("\t1\t", "\t0\t")])      # same name, new content
        (result,) = import_paths(con, [corrected])
        assert result.replaced and "replaces ccipra-v322r0-f1.txt imported" in result.line()
        assert con.execute("SELECT modifier_indicator FROM ref_ptp").fetchall() == [(0,)]
        listing = [r for r in list_reference(con).to_dicts() if r["version"] == "v322r0"]
        assert listing[0]["parts"] == "f1" and "replaces 1 earlier download" in listing[0]["files"]
        assert con.execute("SELECT count(*) FROM ref_files WHERE replaced_by IS NOT NULL").fetchall() == [(1,)]


def test_a_truncated_mue_file_is_reported_and_never_used(tmp_path, db):
    data = MUE_EXCERPT.read_bytes()
    cut = parse_member(MUE_EXCERPT.name, data[:-25])                     # cut inside the last row
    assert cut.truncated and cut.bad_rows == [{"line": 53, "reason": "truncated_row: the file ends mid-line"}]
    assert cut.rows.height == 43                                         # the cut row is not loaded shortened
    with pytest.raises(ReferenceDataError) as info:
        parse_member(MUE_EXCERPT.name, data[:200])                       # cut inside the quoted preamble
    assert str(info.value) == (f"{MUE_EXCERPT.name}: the file ends before its MUE header is complete (a truncated "
                               "download?): download it again")
    path = tmp_path / MUE_EXCERPT.name
    path.write_bytes(data[:-25])
    with connect(db) as con:
        (result,) = import_paths(con, [path])
        assert result.truncated and "TRUNCATED" in result.line()
        assert con.execute("SELECT incomplete_reason FROM ref_versions WHERE kind = 'mue'").fetchall() == [
            ("MUE file 2026-07-01 incomplete: the file truncated (ends mid-row)",)]


def test_an_import_that_fails_on_one_file_imports_nothing(tmp_path, db):
    bad = tmp_path / "ccipra-v322r0-f2.txt"
    bad.write_bytes(b"not a PTP file\r\n")
    with connect(db) as con:
        with pytest.raises(ReferenceDataError) as info:
            import_paths(con, [MUE_EXCERPT, bad])
        assert "nothing was imported" in str(info.value) and str(info.value).startswith("ccipra-v322r0-f2.txt")
        assert con.execute("SELECT count(*) FROM ref_files").fetchall() == [(0,)]
