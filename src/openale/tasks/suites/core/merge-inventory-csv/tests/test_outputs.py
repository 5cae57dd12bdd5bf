import csv
import hashlib
import io
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

DATA = Path("/app/data")
INPUT_SHA256 = {
    "warehouse.csv": "208014635eb6ea46ad2d3258016bec1b055d8f4d312adab510d092b5904d470a",
    "supplier.csv": "ceeb3d2b636d57f013dae89e5216b3624d4ec613ddf3b30fab92c8e335fd493d",
}


def ts(text):
    text = text.strip()
    fmt = "%Y-%m-%dT%H:%M:%SZ" if "T" in text else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)


def read(name, fields):
    best = {}
    with open(DATA / name, newline="") as f:
        for r in csv.DictReader(f):
            sku, nm, qty, price, t = (r[c] for c in fields)
            rec = dict(sku=sku.strip().upper(), name=nm, qty=qty.strip(), price=price.strip(), ts=ts(t))
            if rec["sku"] not in best or rec["ts"] >= best[rec["sku"]]["ts"]:
                best[rec["sku"]] = rec
    return best


def expected():
    wh = read("warehouse.csv", ["sku", "name", "qty", "price", "updated_at"])
    sp = read("supplier.csv", ["item_code", "description", "stock", "unit_cost", "last_modified"])
    rows = []
    for sku in sorted(set(wh) | set(sp)):
        w, s = wh.get(sku), sp.get(sku)
        if w and s:
            name = s["name"] if s["ts"] > w["ts"] else w["name"]
            qty, price, t, src = w["qty"], s["price"] or w["price"], max(w["ts"], s["ts"]), "both"
        elif w:
            name, qty, price, t, src = w["name"], w["qty"], w["price"], w["ts"], "warehouse"
        else:
            name, qty, price, t, src = s["name"], s["qty"] or "0", s["price"], s["ts"], "supplier"
        rows.append([sku, name, str(int(qty)), f"{Decimal(price):.2f}",
                     t.strftime("%Y-%m-%dT%H:%M:%SZ"), src])
    return rows


def test_inputs_untouched():
    for name, digest in INPUT_SHA256.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_header_and_line_endings():
    raw = (DATA / "merged.csv").read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    assert raw.split(b"\n", 1)[0] == b"sku,name,qty,price,updated_at,source"


def test_rows():
    rows = list(csv.reader(io.StringIO((DATA / "merged.csv").read_text(), newline="")))
    want = expected()
    assert len(rows) == len(want) + 1
    assert [r[0] for r in rows[1:]] == [r[0] for r in want]
    for got, exp in zip(rows[1:], want):
        assert got == exp


def test_spot_checks():
    rows = {r[0]: r for r in expected()}
    assert rows["AB-205"][2] == "5000"       # latest duplicate, not the last one
    assert rows["CT-010"][1] == "Cable tie 200mm (100 pk)" and rows["CT-010"][2] == "38"
    assert rows["DR-001"][3] == "24.99" and rows["MS-015"][2] == "0"
    assert rows["TP-900"][1] == 'Duct tape 50 m "silver"'
