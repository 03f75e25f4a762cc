"""Ingest: explicit string schema, every row loaded or quarantined with a reason, clear file errors."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.errors import ClaimAuditError, ConfigError, InputError
from claimaudit.ingest.mapping import load_mapping
from claimaudit.warehouse import connect
from conftest import CANONICAL_HEADER, FIXTURES, SHARED, write_csv

GOOD = "C1,1,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,2,24,100.00,62.00,11"


def run_ingest(db, tmp_path, *paths, mapping=None, profile="medicare", **kw):
    run = pipeline.start_run(db, profile=profile, mapping=mapping, out=tmp_path / "out")
    counts = pipeline.ingest(db, run["run_id"], list(paths), mapping=mapping, profile=profile,
                             out_dir=run["out_dir"], **kw)
    with connect(db) as con:
        lines = con.sql("SELECT * FROM claim_lines WHERE run_id = ? ORDER BY source_row",
                        params=[run["run_id"]]).pl()
    quarantine = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    return counts, lines, quarantine


def test_canonical_csv_loads_with_exact_types(db, tmp_path):
    path = write_csv(tmp_path / "x.csv", CANONICAL_HEADER, GOOD,
                     "C1,2,P1,1234567893,MEDICARE,,2024-03-05,g0283,gp,,,,1,,28,,2")
    counts, lines, quarantine = run_ingest(db, tmp_path, path)
    assert (counts["read"], counts["loaded"], counts["quarantined"]) == (2, 2, 0)
    first, second = lines.to_dicts()
    assert first["units"] == Decimal("2.00") and first["minutes"] == 24 and first["modifiers"] == ["GP"]
    assert first["date_of_service"] == date(2024, 3, 5) and first["rendering_npi"] == "1234567893"
    assert (first["source_file"], first["source_row"]) == (str(path), 2)
    assert second["procedure_code"] == "G0283" and second["modifiers"] == ["GP"]
    assert second["place_of_service"] == "02" and second["minutes"] is None
    assert second["profile"] == "medicare"                                  # run default fills the blank
    assert quarantine.height == 0 and quarantine.columns[-3:] == ["reason", "source_file", "source_line"]


BAD_ROWS = {
    "missing_required:patient_id": "C9,1,,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,10,,11",
    "missing_required:claim_id": ",1,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,10,,11",
    "missing_required:units": "C9,2,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,,15,10,,11",
    "bad_integer:line_number": "C9,x,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,10,,11",
    "bad_date:date_of_service": "C9,3,P1,1234567893,MEDICARE,medicare,2024-02-30,97110,GP,,,,1,15,10,,11",
    "bad_code_format": "C9,4,P1,1234567893,MEDICARE,medicare,2024-03-05,478331,GP,,,,1,15,10,,11",
    "bad_number:units": "C9,5,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,two,15,10,,11",
    "non_positive_units": "C9,6,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,0,15,10,,11",
    "bad_npi_format:rendering_npi": "C9,7,P1,123456789,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,10,,11",
    "bad_modifier_format": "C9,8,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GPX,,,,1,15,10,,11",
    "bad_integer:minutes": "C9,9,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,7.5,10,,11",
    "bad_amount:charge_amount": "C9,10,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,ten,,11",
    "bad_place_of_service": "C9,11,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,10,,OFFICE",
    "unknown_profile:tricare": "C9,12,P1,1234567893,MEDICARE,tricare,2024-03-05,97110,GP,,,,1,15,10,,11",
    "duplicate_claim_line": "C1,1,P1,1234567893,MEDICARE,medicare,2024-03-06,97112,GP,,,,1,15,10,,11",
    "unparseable_row": "C9,13,P1,1234567893,MEDICARE",
}


def test_every_quarantine_reason_with_file_and_line(db, tmp_path):
    path = write_csv(tmp_path / "bad.csv", CANONICAL_HEADER, GOOD, *BAD_ROWS.values())
    counts, lines, quarantine = run_ingest(db, tmp_path, path)
    assert counts["read"] == 1 + len(BAD_ROWS)
    assert (counts["loaded"], counts["quarantined"]) == (1, len(BAD_ROWS))
    got = {r["reason"]: int(r["source_line"]) for r in quarantine.iter_rows(named=True)}
    assert got == {reason: i + 3 for i, reason in enumerate(BAD_ROWS)}      # header is line 1, GOOD line 2
    assert set(quarantine["source_file"]) == {str(path)}
    row = quarantine.filter(pl.col("reason") == "bad_date:date_of_service").row(0, named=True)
    assert row["date_of_service"] == "2024-02-30" and row["claim_id"] == "C9"   # original fields kept
    raw = quarantine.filter(pl.col("reason") == "unparseable_row")["raw_record"].item()
    assert raw == BAD_ROWS["unparseable_row"]


def test_too_many_modifiers_in_one_delimited_column(db, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns: {claim_id: claim, line_number: line, patient_id: pat, rendering_npi: npi,\n"
                       "  date_of_service: dos, procedure_code: cpt, units: units}\n"
                       "modifiers: {column: mods}\n", encoding="utf-8")
    path = write_csv(tmp_path / "m.csv", "claim,line,pat,npi,dos,cpt,units,mods",
                     "C1,1,P1,1234567893,2024-03-05,97110,1,GP 59 XS KX CQ", "C1,2,P1,1234567893,2024-03-05,97110,1,")
    counts, lines, quarantine = run_ingest(db, tmp_path, path, mapping=str(mapping))
    assert quarantine["reason"].to_list() == ["too_many_modifiers"]
    assert lines["modifiers"].to_list() == [[]]


def test_lines_after_a_quoted_multiline_record_keep_their_spreadsheet_row(db, tmp_path):
    path = write_csv(tmp_path / "q.csv", CANONICAL_HEADER, GOOD.replace("C1,1", "C1,9"),
                     "C2,1,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,0,15,10,,11",
                     "C3,1,P1,1234567893,MEDICARE", "C4,1,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,10,,11")
    counts, lines, quarantine = run_ingest(db, tmp_path, path)
    assert lines["source_row"].to_list() == [2, 5]
    assert sorted(quarantine["source_line"].cast(int).to_list()) == [3, 4]


def test_mapping_preset_therapy_ehr_export(db, tmp_path):
    counts, lines, quarantine = run_ingest(db, tmp_path, FIXTURES / "therapy_ehr_export.csv",
                                           mapping="therapy_ehr_export")
    assert (counts["read"], counts["loaded"], counts["quarantined"]) == (4, 4, 0)
    by_claim = {(r["claim_id"], r["line_number"]): r for r in lines.iter_rows(named=True)}
    a = by_claim[("A-1001", 1)]
    assert a["modifiers"] == ["GP", "59"] and a["date_of_service"] == date(2024, 3, 5)
    assert a["charge_amount"] == Decimal("110.00") and a["allowed_amount"] == Decimal("68.20")
    assert a["profile"] == "medicare" and a["provider_discipline"] == "PT"
    assert a["diagnosis_codes"] == ["M5450", "M25561"]
    b = by_claim[("A-1002", 1)]
    assert b["modifiers"] == ["GP", "59", "XS"] and b["date_of_service"] == date(2024, 3, 6)
    assert b["charge_amount"] == Decimal("1050.00") and b["place_of_service"] == "02"
    assert b["profile"] == "commercial_cpt"
    assert by_claim[("A-1003", 1)]["profile"] == "medicare"      # unmapped payer: the run's default profile


def test_rif_carrier_preset_reads_the_real_cms_layout(db, tmp_path):
    path = SHARED / "cms" / "bfd_rif_sample_a_bcarrier_multiple_lines.txt"
    counts, lines, quarantine = run_ingest(db, tmp_path, path, mapping="cms_rif_carrier")
    # the synthetic file's performing NPI (1923124) has 7 digits: every line is quarantined for it,
    # which shows the preset parsed the rest of the row (claim, line, dates, codes) first
    assert (counts["read"], counts["loaded"], counts["quarantined"]) == (7, 0, 7)
    assert set(quarantine["reason"]) == {"bad_npi_format:rendering_npi"}
    assert quarantine["HCPCS_CD"].to_list()[:2] == ["92999", "92998"]
    assert quarantine["source_line"].to_list() == [str(n) for n in range(2, 9)]


def test_parquet_and_xlsx_keep_codes_npis_and_pos_as_text(db, tmp_path):
    frame = pl.DataFrame({
        "claim_id": ["C1", "C2"], "line_number": [1, 1], "patient_id": ["P1", "P2"],
        "rendering_npi": [1234567893, 1234567893], "date_of_service": [date(2024, 3, 5), date(2024, 3, 6)],
        "procedure_code": ["97110", "G0283"], "modifier_1": ["GP", "GP"], "units": [2.0, 1.0],
        "minutes": [24, None], "place_of_service": ["02", "11"], "charge_amount": [100.5, 28.0]})
    frame.write_parquet(tmp_path / "x.parquet")
    frame.write_excel(tmp_path / "x.xlsx")
    for name in ("x.parquet", "x.xlsx"):
        counts, lines, _ = run_ingest(tmp_path / f"{name}.duckdb", tmp_path, tmp_path / name)
        assert counts["loaded"] == 2, name
        assert lines["rendering_npi"].to_list() == ["1234567893"] * 2, name
        assert lines["place_of_service"].to_list() == ["02", "11"], name
        assert lines["date_of_service"].to_list() == [date(2024, 3, 5), date(2024, 3, 6)], name
        assert lines["units"].to_list() == [Decimal("2.00"), Decimal("1.00")], name
        assert lines["source_row"].to_list() == [2, 3], name


def test_several_files_reconcile_per_file(db, tmp_path):
    a = write_csv(tmp_path / "a.csv", CANONICAL_HEADER, GOOD, BAD_ROWS["non_positive_units"])
    b = write_csv(tmp_path / "b.csv", CANONICAL_HEADER, GOOD.replace("C1,", "C2,"))
    counts, lines, quarantine = run_ingest(db, tmp_path, a, b)
    per_file = {f["source_file"]: (f["rows_read"], f["rows_loaded"], f["rows_quarantined"]) for f in counts["files"]}
    assert per_file == {str(a): (2, 1, 1), str(b): (1, 1, 0)}


@pytest.mark.parametrize("setup, message", [
    (lambda p: p, "no such file"),
    (lambda p: (p.write_bytes(b""), p)[1], "the file is empty"),
    (lambda p: (p.write_bytes(CANONICAL_HEADER.encode() + "\nC1,1,P1,1234567893,JOS\xc9,medicare,2024-03-05,97110,GP,,,,1,15,10,,11\n".encode("latin-1")), p)[1],
     "wrong encoding"),
    (lambda p: (p.write_text("a,b,c\n1,2,3\n"), p)[1], "no recognizable header: missing column"),
    (lambda p: (p.with_suffix(".pdf").write_bytes(b"%PDF"), p.with_suffix(".pdf"))[1], "unsupported file type .pdf"),
    (lambda p: (p.with_suffix(".xlsx").write_bytes(b"PK garbage"), p.with_suffix(".xlsx"))[1],
     "not a readable .xlsx workbook"),
    (lambda p: (p.with_suffix(".parquet").write_bytes(b"PAR1 garbage"), p.with_suffix(".parquet"))[1],
     "not a readable Parquet file"),
])
def test_unreadable_files_stop_with_one_line_naming_the_file(db, tmp_path, setup, message):
    path = setup(tmp_path / "extract.csv")
    with pytest.raises(InputError) as info:
        run_ingest(db, tmp_path, path)
    text = str(info.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_bad_mapping_and_profile_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown mapping preset 'nope'"):
        load_mapping("nope")
    bad = tmp_path / "m.yaml"
    bad.write_text("columns: {cpt_code: CPT}\n")
    with pytest.raises(ConfigError, match="not canonical columns"):
        load_mapping(str(bad))
    with pytest.raises(ClaimAuditError, match="unknown profile 'tricare'"):
        pipeline.start_run(tmp_path / "w.duckdb", profile="tricare")


# ---- nothing silent: every column accounted for, every value kept exactly or refused (issue 13)

def _ingest_error(db, tmp_path, path, **kw) -> str:
    with pytest.raises(InputError) as info:
        run_ingest(db, tmp_path, path, **kw)
    text = str(info.value)
    assert text.startswith(str(path)) and "\n" not in text
    return text


def test_a_misspelled_column_that_holds_data_stops_the_run_naming_it(db, tmp_path):
    header = CANONICAL_HEADER.replace("modifier_2", "modifier 2")           # a space for the underscore
    path = write_csv(tmp_path / "x.csv", header, GOOD.replace("GP,,,", "GP,59,,"), GOOD.replace("C1,1", "C1,2"))
    text = _ingest_error(db, tmp_path, path)
    assert "'modifier 2' (column 10) holds data in 1 row(s)" in text
    assert "looks like modifier_2" in text and "--allow-unmapped-columns" in text


def test_a_blank_header_over_data_and_duplicate_names_are_refused(db, tmp_path):
    header = CANONICAL_HEADER.replace("modifier_2", "")
    path = write_csv(tmp_path / "blank.csv", header, GOOD.replace("GP,,,", "GP,59,,"))
    assert "column 10 (no header) holds data in 1 row(s)" in _ingest_error(db, tmp_path, path)
    header = CANONICAL_HEADER.replace("modifier_2", "units")
    path = write_csv(tmp_path / "dup.csv", header, GOOD)
    assert "names two columns 'units' (columns 10 and 13)" in _ingest_error(db, tmp_path / "d", path)


def test_excel_blank_header_over_a_column_of_modifiers_is_refused(db, tmp_path):
    frame = pl.read_csv(io.StringIO(CANONICAL_HEADER + "\n" + GOOD.replace("GP,,,", "GP,59,,")), infer_schema=False)
    frame.rename({"modifier_2": " "}).write_excel(tmp_path / "x.xlsx")
    assert "column 10 (no header) holds data in 1 row(s)" in _ingest_error(db, tmp_path, tmp_path / "x.xlsx")


def test_allowed_or_declared_columns_are_listed_with_their_values(db, tmp_path):
    path = write_csv(tmp_path / "x.csv", CANONICAL_HEADER + ",notes,empty", GOOD + ",seen by PT,", GOOD.replace("C1,1", "C1,2") + ",,")
    assert "'notes' (column 18) holds data in 1 row(s)" in _ingest_error(db, tmp_path, path)
    run = pipeline.start_run(db, out=tmp_path / "out")
    counts = pipeline.ingest(db, run["run_id"], [path], out_dir=run["out_dir"], allow_unmapped=True)
    assert (counts["read"], counts["loaded"]) == (2, 2)
    assert any("'notes' (column 18) holds 1 non-empty value(s) that were NOT loaded" in w
               for w in counts["files"][0]["warnings"])
    mapping = tmp_path / "m.yaml"
    mapping.write_text("ignore: [notes]\n")
    counts, lines, _ = run_ingest(tmp_path / "w2.duckdb", tmp_path, path, mapping=str(mapping))
    with connect(tmp_path / "w2.duckdb") as con:
        listed = json.loads(con.execute("SELECT columns_not_loaded FROM runs").fetchall()[0][0])
    assert [(c["name"], c["ignored"], c["non_empty"]) for c in listed] == [("notes", True, 1), ("empty", False, 0)]


@pytest.mark.parametrize("units, charge, reason", [
    ("1.999", "50.00", "units_precision"),
    ("1.005", "50.00", "units_precision"),
    ("0.004", "50.00", "units_precision"),            # not non_positive_units: it is not zero
    ("1", "1.239", "amount_precision:charge_amount"),
    ("1", "$1,2,3", "bad_amount:charge_amount"),
    ("1", "12,34.00", "bad_amount:charge_amount"),
])
def test_values_are_never_rounded_or_reinterpreted(db, tmp_path, units, charge, reason):
    row = f"C1,1,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,{units},15,\"{charge}\",,11"
    counts, lines, quarantine = run_ingest(db, tmp_path, write_csv(tmp_path / "x.csv", CANONICAL_HEADER, row))
    assert (counts["loaded"], quarantine["reason"].to_list()) == (0, [reason])
    assert (quarantine["units"].item(), quarantine["charge_amount"].item()) == (units, charge)   # as written


@pytest.mark.parametrize("allowed, reason", [
    ("30.239", "amount_precision:allowed_amount"),
    ("$3,0,0", "bad_amount:allowed_amount"),
    ("30.2x", "bad_amount:allowed_amount"),             # the format fails first, not the precision
    ("$1,000.500", None),                               # grouped thousands, zeros after the cents: 1000.50
])
def test_the_allowed_amount_is_checked_like_the_charge(db, tmp_path, allowed, reason):
    row = f"C1,1,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1,15,\"1000.00\",\"{allowed}\",11"
    counts, lines, quarantine = run_ingest(db, tmp_path, write_csv(tmp_path / "x.csv", CANONICAL_HEADER, row))
    if reason is None:
        assert lines["allowed_amount"].to_list() == [Decimal("1000.50")]
    else:
        assert (counts["loaded"], quarantine["reason"].to_list()) == (0, [reason])
        assert quarantine["allowed_amount"].item() == allowed                           # as written


def test_exact_values_load_exactly(db, tmp_path):
    rows = ['C1,1,P1,1234567893,MEDICARE,medicare,2024-03-05,97110,GP,,,,1.5,15,"$1,234.50",62.000,11',
            "C1,2,P1,1234567893.0,MEDICARE,medicare,2024-03-05,97110,GP,,,,2.00,15.0,-5,+3.1,2"]
    counts, lines, _ = run_ingest(db, tmp_path, write_csv(tmp_path / "x.csv", CANONICAL_HEADER, *rows))
    a, b = lines.to_dicts()
    assert (a["units"], a["charge_amount"], a["allowed_amount"]) == (Decimal("1.50"), Decimal("1234.50"),
                                                                      Decimal("62.00"))
    assert (b["units"], b["minutes"], b["charge_amount"], b["allowed_amount"]) == (Decimal("2.00"), 15, Decimal("-5.00"),
                                                                                    Decimal("3.10"))
    assert (b["rendering_npi"], b["place_of_service"]) == ("1234567893", "02")


def test_excel_skip_rows_and_a_detected_title_block_keep_spreadsheet_rows(db, tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Visit charges report"])
    ws.append(["printed 2024-03-10"])
    ws.append([])
    ws.append(CANONICAL_HEADER.split(","))
    ws.append(GOOD.split(","))
    ws.append([])                                                   # an empty row inside the data
    ws.append(GOOD.replace("C1,1", "C1,2").split(","))
    wb.save(tmp_path / "titled.xlsx")
    counts, lines, _ = run_ingest(db, tmp_path, tmp_path / "titled.xlsx")
    assert counts["loaded"] == 2 and lines["source_row"].to_list() == [5, 7]
    assert any("3 row(s) above the header skipped" in w for w in counts["files"][0]["warnings"])
    mapping = tmp_path / "m.yaml"
    mapping.write_text("format: {skip_rows: 3}\n")
    counts, lines, _ = run_ingest(tmp_path / "w2.duckdb", tmp_path, tmp_path / "titled.xlsx", mapping=str(mapping))
    assert lines["source_row"].to_list() == [5, 7] and not counts["files"][0]["warnings"]


def test_csv_title_block_blank_lines_and_rejects_keep_spreadsheet_rows(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("\n".join(["Visit charges report,,", "", CANONICAL_HEADER, GOOD, "",
                               GOOD.replace("C1,1", "C1,2"), "C9,13,P1", GOOD.replace("C1,1", "C1,3")]) + "\n")
    counts, lines, quarantine = run_ingest(db, tmp_path, path)
    assert lines["source_row"].to_list() == [4, 6, 8]
    assert quarantine.select("reason", "source_line").rows() == [("unparseable_row", "7")]


def test_an_unterminated_quote_names_its_line_instead_of_swallowing_the_file(tmp_path):
    from conftest import SAMPLE

    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(",", ',"', 1)                     # line 6 opens a quote that never closes
    middle = write_csv(tmp_path / "open_quote.csv", lines[0], *lines[1:])
    message = _ingest_error(tmp_path / "w.duckdb", tmp_path, middle)
    assert message.startswith(f"{middle}: line 6: a quoted field opens here and is never closed")
    assert "\n" not in message and "CLM" not in message                 # no claim values in the error
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    lines[-1] = lines[-1].replace(",", ',"', 3)                    # a cut last line: one unparseable row, as before
    last = write_csv(tmp_path / "cut_last.csv", lines[0], *lines[1:])
    summary = pipeline.run_audit([last], db=tmp_path / "w2.duckdb", out=tmp_path / "out", data_quality=False)
    assert summary["read"] == 669 and summary["quarantine_reasons"].get("unparseable_row") == 1


def test_the_de_synpuf_carrier_layout_is_refused_with_the_reason(tmp_path):
    path = SHARED / "cms" / "desynpuf_carrier_claims_2rows.csv"
    message = _ingest_error(tmp_path / "w.duckdb", tmp_path, path)
    assert "a CMS DE-SynPUF carrier claims file" in message and "no units, modifiers or minutes" in message
    assert message.endswith("--mapping cms_rif_carrier)")                # whole, never cut mid-word


def test_binary_files_named_csv_are_named_for_what_they_are(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "claims.csv", "w") as z:
        z.writestr("claims.csv", "claim_id\n")
    assert "is a ZIP archive" in _ingest_error(tmp_path / "w.duckdb", tmp_path, tmp_path / "claims.csv")
    png = tmp_path / "scan.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    message = _ingest_error(tmp_path / "w2.duckdb", tmp_path, png)
    assert "is a PNG image" in message and "latin-1" not in message


def test_a_3_mb_field_is_one_row_judged_on_its_own_not_the_whole_file_refused(tmp_path):
    from conftest import SAMPLE

    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("assistant_minutes")] = "9" * 3_000_000                  # a 3 MB value
    lines[3] = ",".join(cells)
    path = write_csv(tmp_path / "big_field.csv", lines[0], *lines[1:])
    summary = pipeline.run_audit([path], db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    assert summary["read"] == 669 and summary["quarantine_reasons"].get("bad_integer:assistant_minutes") == 1
