import json
from collections import defaultdict
from pathlib import Path

DUMP = Path("/app/data/api_dump.json")
OUT = Path("/app/summary.json")
COUNTED = {"completed", "shipped"}


def expected(dedupe=True):
    dump = json.loads(DUMP.read_text())
    fx = dump["meta"]["fx_to_usd"]
    customers = [c for p in dump["pages"] for c in p["data"]["customers"]]
    if dedupe:
        customers = list({c["id"]: c for c in customers}.values())
    agg = defaultdict(lambda: {"customers": 0, "orders": 0, "revenue": 0.0, "qty": defaultdict(int)})
    for c in customers:
        country = ((c["profile"].get("address") or {}).get("country")) or None
        country = country.upper() if country else "unknown"
        orders = [o for o in c["orders"] if o["status"] in COUNTED]
        if not orders:
            continue
        a = agg[country]
        a["customers"] += 1
        a["orders"] += len(orders)
        for o in orders:
            for line in o["lines"]:
                up = line["unit_price"]
                a["revenue"] += line["qty"] * up["amount_cents"] / 100 * fx[up["currency"]]
                a["qty"][line["sku"]] += line["qty"]
    rows = []
    for country, a in agg.items():
        top = sorted(a["qty"].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        rows.append({"country": country, "customers": a["customers"], "orders": a["orders"],
                     "revenue_usd": round(a["revenue"], 2), "top_sku": top})
    rows.sort(key=lambda r: (-r["revenue_usd"], r["country"]))
    return rows


def load():
    data = json.loads(OUT.read_text())
    assert isinstance(data, dict) and list(data) == ["countries"]
    return data["countries"]


def test_dump_exercises_the_traps():
    assert expected(dedupe=True) != expected(dedupe=False)
    countries = [r["country"] for r in expected()]
    assert "unknown" in countries and all(c == "unknown" or c.isupper() for c in countries)


def test_entries_have_exact_keys_and_types():
    for row in load():
        assert set(row) == {"country", "customers", "orders", "revenue_usd", "top_sku"}
        assert type(row["customers"]) is int and type(row["orders"]) is int
        assert isinstance(row["revenue_usd"], (int, float)) and not isinstance(row["revenue_usd"], bool)
        assert isinstance(row["country"], str) and isinstance(row["top_sku"], str)


def test_summary_matches():
    got, want = load(), expected()
    assert [r["country"] for r in got] == [r["country"] for r in want]
    for g, w in zip(got, want):
        assert g["customers"] == w["customers"], w["country"]
        assert g["orders"] == w["orders"], w["country"]
        assert g["top_sku"] == w["top_sku"], w["country"]
        assert abs(g["revenue_usd"] - w["revenue_usd"]) < 0.006, w["country"]
        assert round(g["revenue_usd"], 2) == g["revenue_usd"]
