"""Hand-built 835 remittances for the tests (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

from pathlib import Path


def write_835(claims: list[tuple], path: Path, paid_on: str = "20260401") -> None:
    """Write an 835 paid on ``paid_on`` (BPR16): claims = [(claim id, [(claim line row, paid, "CO*151"
    or "")], CLP02 status, default "1")]. A reversal (status 22) carries negative charges."""
    segs = ["ISA*00*          *00*          *ZZ*PAYER          *ZZ*PROVIDER       *260401*1200*^*00501*000000001*0*T*:",
            "GS*HP*PAYER*PROVIDER*20260401*1200*1*X*005010X221A1", "ST*835*0001",
            f"BPR*I*100*C*CHK************{paid_on}", "TRN*1*12345*1999999999", "N1*PR*MEDICARE",
            "N1*PE*CLINIC*XX*1234567893", "LX*1"]
    for claim_id, lines, *status in claims:
        status = status[0] if status else "1"
        sign = -1 if status == "22" else 1
        total = sum(float(r["charge_amount"]) for r, _, _ in lines) * sign
        segs.append(f"CLP*{claim_id}*{status}*{total:.2f}*0**MB*PAYERCLAIM{claim_id}")
        for row, paid, cas in lines:
            mods = ":".join(m for m in (row["modifier_1"], row["modifier_2"], row["modifier_3"], row["modifier_4"]) if m)
            code = f"HC:{row['procedure_code']}" + (f":{mods}" if mods else "")
            segs += [f"SVC*{code}*{sign * float(row['charge_amount']):.2f}*{paid}**{row['units']}",
                     f"DTM*472*{row['date_of_service'].replace('-', '')}"]
            if cas:
                segs.append(f"CAS*{cas}*{float(row['charge_amount']):.2f}")
    segs += ["SE*99*0001", "GE*1*1", "IEA*1*000000001"]
    path.write_text("~\n".join(segs) + "~\n", encoding="ascii")
