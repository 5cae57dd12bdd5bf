import re
from decimal import Decimal
from pathlib import Path

LEDGER = Path("/app/reports/sales_ledger.txt")
OUT = Path("/app/region_totals.tsv")


def expected_lines():
    totals = {}
    for line in LEDGER.read_text().split("\n"):
        if not re.match(r"\d{4}-\d{2}-\d{2}", line):
            continue
        region = line[11:25].strip()
        qty = int(line[45:51])
        price = Decimal(line[51:62].replace(",", "").strip())
        units, revenue = totals.get(region, (0, Decimal(0)))
        totals[region] = (units + qty, revenue + qty * price)
    rows = sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return ["region\tunits\trevenue"] + [f"{r}\t{u}\t{v:.2f}" for r, (u, v) in rows]


def test_ledger_has_expected_shape():
    # guards the test itself: several regions, multi-word names, returns and big prices
    text = LEDGER.read_text()
    assert "North East" in text and "1,249.00" in text and "\f" in text
    assert len(expected_lines()) == 7


def test_output_exists_with_unix_newline():
    data = OUT.read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data


def test_totals_and_order():
    got = OUT.read_text().rstrip("\n").split("\n")
    assert got == expected_lines()
