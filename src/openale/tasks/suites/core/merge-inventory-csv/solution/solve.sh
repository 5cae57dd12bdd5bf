#!/bin/bash
set -euo pipefail
cd /app/data
python3 - <<'PY'
import csv
from decimal import Decimal

def load(path, cols, ts_fix):
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            sku, name, qty, price, ts = (r[c] for c in cols)
            rec = {"sku": sku.strip().upper(), "name": name, "qty": qty.strip(),
                   "price": price.strip(), "ts": ts_fix(ts.strip())}
            old = rows.get(rec["sku"])
            if old is None or rec["ts"] >= old["ts"]:
                rows[rec["sku"]] = rec
    return rows

wh = load("warehouse.csv", ["sku", "name", "qty", "price", "updated_at"], lambda t: t)
sp = load("supplier.csv", ["item_code", "description", "stock", "unit_cost", "last_modified"],
          lambda t: t.replace(" ", "T") + "Z")
out = []
for sku in sorted(set(wh) | set(sp)):
    w, s = wh.get(sku), sp.get(sku)
    if w and s:
        name = s["name"] if s["ts"] > w["ts"] else w["name"]
        row = [sku, name, w["qty"], s["price"] or w["price"], max(w["ts"], s["ts"]), "both"]
    elif w:
        row = [sku, w["name"], w["qty"], w["price"], w["ts"], "warehouse"]
    else:
        row = [sku, s["name"], s["qty"] or "0", s["price"], s["ts"], "supplier"]
    row[2] = str(int(row[2]))
    row[3] = f"{Decimal(row[3]):.2f}"
    out.append(row)
with open("merged.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["sku", "name", "qty", "price", "updated_at", "source"])
    w.writerows(out)
PY
cat merged.csv
