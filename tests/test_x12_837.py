"""837P reader against the real files in ../shared/data/x12/837p, cross-checked with pyx12."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.errors import InputError
from claimaudit.x12 import segments
from claimaudit.x12.claims837 import read_837, write_837_parquet

X12 = Path(__file__).resolve().parents[2] / "shared" / "data" / "x12" / "837p"
NEGATIVE = ("bad_", "_missing_", "no_isa", "loop_errors", "out_of_order", "segment_errors")
VALID = sorted(p for p in X12.iterdir() if not any(n in p.name for n in NEGATIVE))


def _pyx12_lines(path: Path, component: str) -> list[tuple]:
    """(claim id, code, modifiers, units) per service line as pyx12 reads the file.

    pyx12 4.0 ships the 005010X222A1 map only, so the A2 errata label is read as A1 (same segments).
    When our reader found that ISA16 differs from the separator the file really uses, pyx12 gets
    the file with ISA16 corrected (it would otherwise misread the composites)."""
    import pyx12.error_handler
    import pyx12.params
    import pyx12.x12context

    text = path.read_text(encoding="utf-8").replace("005010X222A2", "005010X222A1")
    start = text.index("ISA")
    text = text[:start + 104] + component + text[start + 105:]
    reader = pyx12.x12context.X12ContextReader(pyx12.params.params(), pyx12.error_handler.errh_null(),
                                               io.StringIO(text))
    out = []
    for tree in reader.iter_segments("2300"):
        if tree.id == "2300":
            for line in tree.select("2400"):
                mods = tuple(m for m in (line.get_value(f"SV101-{i}") for i in (3, 4, 5, 6)) if m)
                out.append((tree.get_value("CLM01"), line.get_value("SV101-2"), mods, float(line.get_value("SV104"))))
    return out


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_files_load_and_match_pyx12(path):
    records, rejects, warnings = read_837(path)
    assert rejects.height == 0
    component = ">" if any("procedure composites use '>'" in w for w in warnings) else \
        segments.separators(path, segments.head(path)).component
    ours = [(r["claim_id"], r["procedure_code"],
             tuple(m for m in (r[f"modifier_{i}"] for i in (1, 2, 3, 4)) if m),
             float(r["minutes"] if r["minutes"] is not None else r["units"]))
            for r in records.sort("__line").iter_rows(named=True)]
    theirs = _pyx12_lines(path, component)
    assert len({c for c, *_ in ours}) == len({c for c, *_ in theirs}) or len(ours) == len(theirs)
    assert ours == theirs


def test_fields_of_a_dependent_claim():
    records, _, _ = read_837(X12 / "demo.example1.837")
    first, third = records.row(0, named=True), records.row(2, named=True)
    assert (first["claim_id"], first["line_number"], first["procedure_code"]) == ("26463774", "1", "99213")
    assert first["patient_id"].startswith("JS00111223333-D")         # member id + dependent hash, no name
    assert "SMITH" not in first["patient_id"]
    assert first["rendering_npi"] == first["billing_npi"] == "1912301953"   # no NM1*82: billing provider
    assert (first["date_of_service"], first["charge_amount"], first["units"]) == ("20061003", "40.00", "1.00")
    assert first["place_of_service"] == "11"                          # CLM05-1 (SV105 empty)
    assert (first["diagnosis_codes"], third["diagnosis_codes"]) == ("0340", "V7389")   # SV107 pointers 1, 2
    assert first["source_interchange"] == "000000907" and first["__line"] == 31


def test_rendering_provider_precedence_and_ranges():
    records, _, _ = read_837(X12 / "demo.autoaccident.837")
    assert set(records["rendering_npi"]) == {"2366552595"}            # claim-level NM1*82 (2310B)
    drug, _, _ = read_837(X12 / "demo.drug.example10.2.837")
    assert (drug["date_of_service"][0], drug["service_end_date"][0]) == ("20040201", "20040207")   # RD8


def test_anesthesia_minutes_and_the_wrong_isa16():
    records, _, warnings = read_837(X12 / "demo.example9.837")
    row = records.row(0, named=True)
    assert (row["procedure_code"], row["modifier_1"], row["modifier_2"], row["modifier_3"]) == ("00142", "QK", "QS", "P1")
    assert (row["minutes"], row["units"]) == ("61.00", "1")           # MJ: minutes, one service
    assert any("ISA16 declares ':'" in w and "'>'" in w for w in warnings)


@pytest.mark.parametrize("name, message", [
    ("imsweb_x12_no_isa_line.txt", "must start with an ISA segment"),
    ("imsweb_x12_bad_first_line.txt", "ISA02 is 9 characters (expected 10)"),
])
def test_files_that_are_not_interchanges_are_refused_with_one_line(name, message):
    with pytest.raises(InputError, match=re.escape(message)) as err:
        read_837(X12 / name)
    assert name in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name, loaded, rejected, reason", [
    ("imsweb_x12_bad_segment_identifier.txt", 0, 2, "segment 11: 'Nd4' is not a segment identifier"),
    ("imsweb_x12_segments_out_of_order.txt", 0, 2, "N4 before N3"),
    ("imsweb_x12_missing_elements.txt", 1, 1, "claim A37YH667: segment 31: CLM05 (place of service) missing"),
    ("imsweb_x12_segment_errors.txt", 0, 1, "claim has no HI (diagnosis) segment"),
    ("imsweb_x12_loop_errors1_exceeds_max_1_parent.txt", 0, 1, "a second billing provider NM1*85"),
])
def test_damage_is_contained_to_the_claims_it_touches(name, loaded, rejected, reason):
    records, rejects, _ = read_837(X12 / name)
    assert (records.height, rejects.height) == (loaded, rejected)
    assert all(reason in e for e in rejects["error"]) if rejected == rejects.height and loaded == 0 else \
        any(reason in e for e in rejects["error"])
    assert rejects["error"].str.starts_with("x12: claim ").all()


def test_terminators_bom_and_indentation_do_not_change_what_is_read(tmp_path):
    base, _, _ = read_837(X12 / "demo.example1.837")
    text = (X12 / "demo.example1.837").read_text()
    variants = {
        "bom_crlf.837": "\ufeff" + text.replace("~", "~\r\n"),
        "indented.837": text.replace("~", "~\n    "),
    }
    for name, content in variants.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
        records, rejects, _ = read_837(tmp_path / name)
        assert rejects.height == 0
        assert records.drop("__line").equals(base.drop("__line")), name


@pytest.mark.parametrize("terminator", ["~", "\n", "~\r\n  "])
def test_streaming_pieces_give_the_same_lines(monkeypatch, tmp_path, terminator):
    """Pieces end before an ST: 312 interchanges read in ~4 KB pieces give the same lines as one piece,
    whether segments end with ~, a newline, or ~ + CR/LF + indentation."""
    path = tmp_path / "multiple.txt"
    path.write_text((X12 / "imsweb_x12_multiple_transactions.txt").read_text().replace("~", terminator))
    whole, _, _ = read_837(path)
    seps = segments.separators(path, segments.head(path))
    pieces = list(segments.iter_pieces(path, seps, piece_bytes=4096))
    assert len(pieces) > 50 and all(p.lstrip().startswith("ST") for p, _ in pieces[1:])
    monkeypatch.setattr(segments.iter_pieces, "__defaults__", (4096,))     # every read uses 4 KB pieces
    streamed, _, _ = read_837(path)
    assert whole.height == 624
    assert streamed.equals(whole)


def test_audit_reads_837_by_content_and_reconciles(tmp_path):
    files = [X12 / "demo.example1.837", X12 / "imsweb_x12_missing_elements.txt", X12 / "demo.example9.837"]
    summary = pipeline.run_audit(files, db=tmp_path / "w.duckdb", out=tmp_path / "out", data_quality=False)
    assert summary["read"] == 4 + 2 + 1 and summary["reconciled"]
    assert summary["quarantine_reasons"] == {
        "x12: claim A37YH667: segment 31: CLM05 (place of service) missing": 1}
    by_file = {Path(f["source_file"]).name: f for f in summary["inputs"]}
    assert by_file["demo.example1.837"]["file_format"] == "x12-837"
    assert any("ISA16" in w for w in by_file["demo.example9.837"]["warnings"])
    loaded = pl.read_csv(tmp_path / "out" / "quarantine.csv", infer_schema=False)
    assert loaded["source_line"].to_list() == ["34"]                 # the SV1 segment of the dropped claim


@pytest.mark.parametrize("name", ["imsweb_x12_multiple_transactions.txt", "imsweb_x12_missing_elements.txt",
                                  "imsweb_x12_segment_errors.txt"])
def test_streamed_parquet_holds_what_read_837_reads(tmp_path, monkeypatch, name):
    """x12-lines writes piece by piece (4 KB pieces here): the same lines and rejects as one read,
    provenance kept; a file with no good line still gets an (empty) lines.parquet."""
    whole, rejected, warnings = read_837(X12 / name)
    monkeypatch.setattr(segments.iter_pieces, "__defaults__", (4096,))
    counts = write_837_parquet(X12 / name, tmp_path)
    assert (counts["lines"], counts["rejects"], counts["warnings"]) == (whole.height, rejected.height, warnings)
    lines = pl.read_parquet(tmp_path / "lines.parquet")
    assert lines.height == whole.height
    assert lines.equals(whole.rename({"__line": "source_row"}))
    assert pl.read_parquet(tmp_path / "rejects.parquet").equals(rejected.rename({"__line": "source_row"}))


def test_x12_lines_command_and_auditing_its_output(tmp_path):
    """The converted lines audit like the 837 itself: same lines loaded, same findings."""
    from click.testing import CliRunner

    from claimaudit.cli import cli

    runner = CliRunner()
    # the shared 837 files raise no finding, so: three therapy claims with a PTP pair (97530 + 97140),
    # the second without the rendering NPI the rules need
    claims = []
    for n, rendering in ((1, "NM1*82*1*THERAPIST*SYN****XX*1234567893~"), (2, ""), (3, "")):
        claims.append(f"HL*{n + 1}*1*22*0~SBR*P*18*******MB~NM1*IL*1*PATIENT*SYN****MI*M{n:05d}~"
                      f"NM1*PR*2*MEDICARE PART B*****PI*12345~CLM*C{n}*200***11:B:1*Y*A*Y*Y~HI*ABK:M25561~"
                      f"{rendering}LX*1~SV1*HC:97530:GP*100*UN*1***1~DTP*472*D8*20260302~"
                      f"LX*2~SV1*HC:97140:GP*100*UN*1***1~DTP*472*D8*20260302~")
    body = ("ST*837*0001*005010X222A1~BHT*0019*00*1*20260301*0932*CH~HL*1**20*1~"
            "NM1*85*2*SYNTHETIC THERAPY GROUP*****XX*1234567893~N3*1 MAIN ST~N4*ANYTOWN*MD*20705~"
            + "".join(claims))
    src = tmp_path / "therapy.837"
    src.write_text("ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260301*0932*^*00501*"
                   "000000001*0*T*:~GS*HC*S*R*20260301*0932*1*X*005010X222A1~" + body
                   + f"SE*{body.count('~') + 1}*0001~GE*1*1~IEA*1*000000001~")
    result = runner.invoke(cli, ["x12-lines", str(src), "--out", str(tmp_path / "conv")])
    assert result.exit_code == 0, result.output
    assert "6 service lines" in result.output
    direct = pipeline.run_audit([src], db=tmp_path / "a.duckdb", out=tmp_path / "a", data_quality=False)
    converted = pipeline.run_audit([tmp_path / "conv" / "lines.parquet"], db=tmp_path / "b.duckdb",
                                   out=tmp_path / "b", data_quality=False)
    assert (converted["read"], converted["loaded"]) == (direct["read"], direct["loaded"]) == (6, 6)
    key = ["rule_id", "claim_id", "line_number", "procedure_code"]
    a = pl.read_parquet(tmp_path / "a" / "findings.parquet").select(key).sort(key)
    b = pl.read_parquet(tmp_path / "b" / "findings.parquet").select(key).sort(key)
    assert a.height > 0 and "PTP-002" in a["rule_id"].to_list() and a.equals(b)
    # not an 837: one line on stderr, exit 2, no traceback (a real process, as users run it)
    remit = next((X12.parent / "835").glob("*.835"))
    for path, words in ((remit, "837P claims only"), (Path(__file__), "not an X12 interchange")):
        done = subprocess.run([sys.executable, "-m", "claimaudit", "x12-lines", str(path), "--out", str(tmp_path / "x")],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
