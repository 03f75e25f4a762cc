"""The benchmark generator stays loadable: exact line count, nothing quarantined, reference files import."""

from __future__ import annotations

import importlib.util

from claimaudit import pipeline
from claimaudit.refdata import import_paths
from claimaudit.warehouse import connect
from conftest import REPO

spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def test_generated_extract_and_reference_load_cleanly(tmp_path):
    frame = generate.claims(3000)
    assert frame.height == 3000
    frame.write_csv(tmp_path / "claims.csv")
    generate.ptp_file(tmp_path / "ccipra-v322r0-f1.txt", 5000)
    generate.mue_file(tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", 500)
    db = tmp_path / "w.duckdb"
    with connect(db) as con:
        results = import_paths(con, [tmp_path / "ccipra-v322r0-f1.txt",
                                     tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"],
                               parts=1)                       # the synthetic release is one part file
    assert all(r.rows_bad == 0 and r.rows_loaded > 0 for r in results)
    summary = pipeline.run_audit([tmp_path / "claims.csv"], db=db, out=tmp_path / "out", data_quality=False)
    assert (summary["read"], summary["quarantined"]) == (3000, 0)
    assert summary["reference"]["starter_set_used"] is False
    assert {"DUP-001", "PTP-002", "TIME-001"} <= set(summary["findings"]["by_rule"])
