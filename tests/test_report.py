"""report.html and report.xlsx: read back, self-contained, rendered in a real browser; history across runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser

import openpyxl
import polars as pl
import pytest

from claimaudit import pipeline
from claimaudit.schema import FINDINGS_COLUMNS
from conftest import SAMPLE


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("report")
    summary = pipeline.run_audit([SAMPLE], db=work / "w.duckdb", out=work / "run")
    return work / "run", summary


def test_xlsx_reads_back_with_every_sheet_and_finding(sample_run):
    out, summary = sample_run
    wb = openpyxl.load_workbook(out / "report.xlsx")
    assert wb.sheetnames == ["Summary", "Findings", "By provider", "By rule", "Data quality", "Quarantine"]
    ws = wb["Findings"]
    header = [c.value for c in ws[1]]
    assert header == FINDINGS_COLUMNS[:2] + ["rule_name"] + FINDINGS_COLUMNS[2:]      # the name next to the id
    names = {ws.cell(r, 2).value: ws.cell(r, 3).value for r in range(2, ws.max_row + 1)}
    assert names["PTP-002"] == "NCCI pair without a bypass modifier" and all(names.values())
    assert ws.max_row - 1 == summary["findings"]["total"] == 29
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, ws.max_column).column_letter}{ws.max_row}"   # every row
    by_rule = wb["By rule"]
    assert next(iter(by_rule.tables.values())).autoFilter.ref                    # small sheets: Excel tables
    amount = header.index("amount_at_risk") + 1
    assert "$" in ws.cell(row=2, column=amount).number_format
    assert wb["Quarantine"].max_row - 1 == summary["quarantined"] == 5
    assert {c.value for c in wb["Data quality"]["A"][1:]} >= {"DQ-CODE-FORMAT", "DQ-NPI-CHECK-DIGIT"}
    items = {r[0].value: r[1] for r in wb["Summary"].iter_rows(min_row=2)}
    assert items["findings"].value == 29 and items["reconciles"].value == "yes"     # numbers are numbers
    assert items["rows read"].value == 669 and items["rows read"].data_type == "n"
    assert items["dollars at risk (errors)"].value == pytest.approx(summary["amount_at_risk"])
    assert "$" in items["dollars at risk (errors)"].number_format
    assert isinstance(items["started"].value, datetime) and items["started"].is_date        # a real datetime
    quarantine = wb["Quarantine"]
    header = [c.value for c in quarantine[1]]
    assert header[:3] == ["reason", "source_file", "source_line"]                 # then the original fields
    assert {"claim_id", "patient_id", "procedure_code", "units"} <= set(header)
    assert all(not str(c.value or "").startswith("{") for row in quarantine.iter_rows(min_row=2) for c in row)
    dq = wb["Data quality"]
    pct = [c.value for c in dq[1]].index("unexpected_percent")
    cells = [row[pct] for row in dq.iter_rows(min_row=2) if row[pct].value]
    assert cells and all("%" in c.number_format and 0 < c.value < 1 for c in cells)


class _Resources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.scripts_with_src, self.rows, self.headline = [], 0, 0, None
        self._in_findings = self._in_headline = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [v for k, v in a.items() if k in ("src", "href", "data", "poster", "srcset") and v]
        if tag == "script" and a.get("src"):
            self.scripts_with_src += 1
        if tag == "table" and a.get("id") == "findings":
            self._in_findings = True
        if self._in_findings and tag == "tr" and "data-sev" in a:
            self.rows += 1
        self._in_headline = a.get("id") == "headline-findings"

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_findings = False

    def handle_data(self, data):
        if self._in_headline:
            self.headline, self._in_headline = data.strip(), False


def test_html_is_self_contained_and_shows_the_findings(sample_run):
    out, summary = sample_run
    html = (out / "report.html").read_text(encoding="utf-8")
    parsed = _Resources()
    parsed.feed(html)
    external = [r for r in parsed.refs if r.startswith(("http://", "https://", "//"))]
    assert external == [] and parsed.scripts_with_src == 0
    assert "url(http" not in html and "@import" not in html and "<link" not in html
    assert parsed.refs == ["data-docs/index.html"]                     # the one link: local Data Docs
    assert parsed.rows == summary["findings"]["total"] == int(parsed.headline)
    assert html.count("<svg") >= 4 and "Starter reference set used" in html
    assert "Dollars at risk by family:</b> modifiers $401.51" in html                  # dollars in the headline
    assert "MOD-006 Over the KX threshold without KX $143.84" in html


def test_history_new_recurring_resolved_and_diff(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    first = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "one", data_quality=False)
    assert first["findings"]["total"] == 26 and first["history"]["previous_run_id"] is None
    fixed = pl.read_csv(SAMPLE, infer_schema=False).with_columns(
        # fix TIME-001 (CLM001302: bill 97110 x1) and MOD-001 (CLM001316: add GP)
        pl.when((pl.col("claim_id") == "CLM001302") & (pl.col("line_number") == "2")).then(pl.lit("1"))
        .otherwise(pl.col("units")).alias("units"),
        pl.when(pl.col("claim_id") == "CLM001316").then(pl.lit("GP")).otherwise(pl.col("modifier_1")).alias("modifier_1"))
    new_rows = fixed.filter(pl.col("claim_id") == "CLM001302").head(1).with_columns(
        claim_id=pl.lit("CLM009999"), patient_id=pl.lit("PT29999"), procedure_code=pl.lit("99213"),
        modifier_1=pl.lit(""), minutes=pl.lit(""))
    new_rows = pl.concat([new_rows, new_rows.with_columns(line_number=pl.lit("2"))])     # an exact duplicate
    second_input = tmp_path / "second.csv"
    pl.concat([fixed, new_rows]).write_csv(second_input)
    monkeypatch.setattr("claimaudit.report.data.RESOLVED_SHOWN", 1)      # the report lists the first, says so
    second = pipeline.run_audit([second_input], db=db, out=tmp_path / "two", data_quality=False)
    h = second["history"]
    assert h["previous_run_id"] == first["run_id"] and h["scope"] == first["history"]["scope"]
    assert (h["new"], h["recurring"], h["resolved"]) == (1, 24, 2)
    statuses = pl.read_parquet(tmp_path / "two" / "findings.parquet").group_by("status").len()
    assert dict(statuses.iter_rows()) == {"new": 1, "recurring": 24}
    html = (tmp_path / "two" / "report.html").read_text(encoding="utf-8")
    assert "Resolved since the previous run (the first 1 of 2;" in html and html.count("<svg") >= 6  # + 2 trends
    resolved_table = html[html.index("Resolved since the previous run"):]
    assert resolved_table[:resolved_table.index("</table>")].count("<tr><td>") == 1

    out = subprocess.run([sys.executable, "-m", "claimaudit", "diff", first["run_id"], second["run_id"], "--db", str(db)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "1 new, 24 recurring, 2 resolved" in out.stdout
    assert "DUP-001" in out.stdout and "TIME-001" in out.stdout and "MOD-001" in out.stdout
    # a different practice (other billing NPI) starts its own history
    other = tmp_path / "other.csv"
    pl.read_csv(SAMPLE, infer_schema=False).with_columns(billing_npi=pl.lit("1245319599")).write_csv(other)
    third = pipeline.run_audit([other], db=db, out=tmp_path / "three", data_quality=False)
    assert third["history"]["previous_run_id"] is None


CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,2400"]


def test_report_renders_in_headless_chromium_without_console_errors(sample_run, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        if os.environ.get("CLAIMAUDIT_REQUIRE_BROWSER"):          # CI installs it, so there it must run
            pytest.fail("CLAIMAUDIT_REQUIRE_BROWSER is set but chromium/chromedriver are not installed")
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver to run this test "
                    "(.ci/run does)")
    out, summary = sample_run
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get((out / "report.html").resolve().as_uri())
        charts = driver.execute_script("""
            return Array.from(document.querySelectorAll('figure svg')).map(function (s) {
                var r = s.getBoundingClientRect();
                return {w: r.width, h: r.height, marks: s.querySelectorAll('path, rect, line, text').length};
            });""")
        assert len(charts) >= 4 and all(c["w"] > 50 and c["h"] > 50 and c["marks"] > 5 for c in charts), charts
        # the findings table filters in the page itself
        shown = driver.execute_script("""
            var s = document.getElementById('f-sev'); s.value = 'error'; s.dispatchEvent(new Event('input'));
            return +document.getElementById('shown-count').textContent;""")
        assert shown == summary["findings"]["error"]
        driver.save_screenshot(str(out / "report.png"))        # for people to look at
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        # the data-quality page with the network switched off: nothing to fetch, every result visible
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                     "downloadThroughput": 0, "uploadThroughput": 0})
        driver.get((out / "data-docs" / "index.html").resolve().as_uri())
        page = driver.execute_script("""
            return {resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
                    rows: document.querySelectorAll('tbody tr').length, text: document.body.innerText,
                    styled: getComputedStyle(document.querySelector('th')).backgroundColor};""")
        assert page["resources"] == [] and page["rows"] == summary["data_quality"]["expectations"] == 23
        assert "DQ-NPI-CHECK-DIGIT" in page["text"] and "rendering NPI has 10 digits" in page["text"]
        assert page["styled"] != "rgba(0, 0, 0, 0)"                         # the stylesheet applied
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        driver.save_screenshot(str(out / "data-docs.png"))
    finally:
        driver.quit()
    assert (out / "report.png").stat().st_size > 10_000


def test_no_file_of_the_run_folder_refers_to_the_network(sample_run):
    import re

    out, _ = sample_run
    namespaces = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink", "http://www.w3.org/1999/xhtml"}
    found = {}
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".json", ".csv", ".js", ".css", ".svg"):
            urls = set(re.findall(r"https?://[^\s\"'<>)]+", path.read_text(encoding="utf-8", errors="replace")))
            if urls - namespaces:
                found[path.name] = sorted(urls - namespaces)[:3]
    assert found == {}
    assert (out / "data-docs" / "index.html").exists() and not (out / "data-docs" / "static").exists()


def test_every_rule_has_a_name_in_the_one_catalogue():
    import json
    import re

    from claimaudit.resources import resource
    from claimaudit.rules import catalogue

    ids = {m for p in resource("sql", "rules").glob("*.sql")
           for m in re.findall(r"'((?:PTP|MUE|TIME|MOD|DUP|COV|REF)-\d{3})'", p.read_text())}
    suite = json.loads(resource("expectations", "claim_lines.json").read_text())
    ids |= {e["meta"]["id"] for e in suite["expectations"]}
    assert len(ids) > 40 and {i for i in ids if not catalogue.name(i)} == set()
    assert catalogue.label("PTP-002") == "PTP-002 NCCI pair without a bypass modifier"


def test_trend_has_one_point_per_run_and_skips_families_a_run_did_not_run(tmp_path):
    import duckdb

    from claimaudit.report.charts import trend
    from claimaudit.report.data import collect

    db = tmp_path / "w.duckdb"
    pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "a", scope="clinic")
    second = pipeline.run_audit([SAMPLE], db=db, out=tmp_path / "b", scope="clinic", data_quality=False)
    with duckdb.connect(str(db), read_only=True) as con:
        data = collect(con, second["run_id"], second)
    frame = data.trend
    assert frame["run_id"].n_unique() == 2                                  # seconds apart, still two points
    by_run = {r: set(frame.filter(pl.col("run_id") == r)["family"]) for r in frame["run_id"].unique()}
    assert "data_quality" in by_run[next(r for r in by_run if r != second["run_id"])]
    assert "data_quality" not in by_run[second["run_id"]]                   # skipped: absent, not zero
    svg = trend(frame, "findings", "findings")
    assert svg and svg.count(second["run_id"][-6:]) >= 1


def test_by_rule_chart_cuts_long_names_by_characters_and_keeps_labels_apart():
    from claimaudit.report import charts

    long_a = "DQ-LONG-A " + "a very long data-quality expectation name" * 2
    long_b = "DQ-LONG-B " + "a very long data-quality expectation name" * 2
    frame = pl.DataFrame({"rule": [long_a, long_b, "MOD-001 short"], "findings": [3, 2, 1],
                          "severity": ["warning", "warning", "error"], "dollars_at_risk": [0.0, 0.0, 1.0]})
    svg = charts.findings_by_rule(frame)
    assert long_a not in svg and long_b not in svg and "MOD-001 short" in svg
    cut = [long_a[:charts.RULE_LABEL_CHARS - 1] + "…", long_b[:charts.RULE_LABEL_CHARS - 1] + "…"]
    assert all(label in svg for label in cut) and cut[0] != cut[1]


def test_by_provider_and_by_code_add_up_to_the_findings(sample_run):
    """The By provider / By code tables count each finding once, and their error dollars are the findings'."""
    from claimaudit.report.data import collect
    from claimaudit.warehouse import connect

    out, summary = sample_run
    findings = pl.read_parquet(out / "findings.parquet")
    with connect(out.parent / "w.duckdb", read_only=True) as con:
        data = collect(con, summary["run_id"], summary)
    for table, column, key in ((data.by_provider, "rendering_npi", "provider"), (data.by_code, "procedure_code", "code")):
        expected = findings.group_by(column).agg(
            pl.len().alias("findings"), (pl.col("severity") == "error").sum().alias("errors"),
            pl.col("amount_at_risk").filter(pl.col("severity") == "error").sum().cast(pl.Float64).alias("dollars"))
        got = table.select(pl.col(key).alias(column), pl.col("findings").cast(pl.UInt32),
                           pl.col("errors").cast(pl.UInt32), pl.col("dollars_at_risk").alias("dollars"))
        assert got.sort(column).equals(expected.sort(column)), key
        assert table["findings"].sum() == summary["findings"]["total"] == 29
    assert data.by_payer["findings"].sum() == 29
