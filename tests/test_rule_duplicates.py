"""DUP-001 on hand-made cases."""

from __future__ import annotations

from decimal import Decimal

from conftest import audit_lines, keys, line


def test_exact_duplicates_flag_every_later_copy_across_claims(tmp_path):
    f = audit_lines(tmp_path,
                    line("C1", 1, "97110", "GP", minutes=15, charge="52.00", allowed="32.24"),
                    line("C2", 1, "97110", "GP", minutes=15, charge="52.00", allowed="32.24"),
                    line("C3", 4, "97110", "GP", minutes=15, charge="52.00"))
    dup = f.filter(f["rule_id"] == "DUP-001").sort("claim_id")
    assert keys(dup) == {("DUP-001", "C2", 1), ("DUP-001", "C3", 4)}
    first = dup.row(0, named=True)
    assert first["related_lines"] == ["C1:1", "C2:1", "C3:4"]
    assert first["amount_at_risk"] == Decimal("32.24")                     # allowed amount when known
    assert dup.row(1, named=True)["amount_at_risk"] == Decimal("52.00")    # else the charge
    assert first["severity"] == "error" and first["family"] == "duplicates"
    assert first["predicted_carc"] == "CO-18" and "C1:1" in first["message"]
    assert first["actual"] == "3 identical lines" and first["recommended_action"]


def test_modifier_order_does_not_matter(tmp_path):
    f = audit_lines(tmp_path, line("C1", 1, "97140", "GP", "59", minutes=15),
                    line("C1", 2, "97140", "59", "GP", minutes=15))
    assert keys(f, "DUP-001") == {("DUP-001", "C1", 2)}


def test_lines_that_differ_in_any_key_are_not_duplicates(tmp_path):
    base = dict(minutes=15)
    f = audit_lines(tmp_path,
                    line("C1", 1, "97110", "GP", **base),
                    line("C1", 2, "97110", "GP", units=2, minutes=30),         # units
                    line("C1", 3, "97110", "GP", "KX", **base),                # modifiers
                    line("C1", 4, "97110", "GP", npi="1245319599", **base),    # provider
                    line("C1", 5, "97110", "GP", patient="P2", **base),        # patient
                    line("C1", 6, "97110", "GP", dos="2024-06-05", **base),    # date
                    line("C1", 7, "97112", "GP", **base))                      # code
    assert keys(f, "DUP-001") == set()
