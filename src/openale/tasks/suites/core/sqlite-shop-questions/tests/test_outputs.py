import hashlib
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import make_shop_db  # noqa: E402

ANSWERS = Path("/app/answers")
SALE = ("paid", "shipped")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "shop.db"
    make_shop_db.build(str(path))
    db = sqlite3.connect(path)
    yield db
    db.close()


def lines(pristine):
    return pristine.execute(
        "SELECT o.customer_id, o.status, o.created_at, oi.quantity, oi.unit_price_cents, p.category "
        "FROM orders o JOIN order_items oi ON oi.order_id = o.id JOIN products p ON p.id = oi.product_id"
    ).fetchall()


def euros(cents):
    return f"{cents // 100}.{cents % 100:02d}"


def test_database_unchanged(pristine, tmp_path):
    live = sqlite3.connect("/app/shop.db")
    for table in ("customers", "products", "orders", "order_items"):
        q = f"SELECT * FROM {table} ORDER BY 1, 2"
        assert live.execute(q).fetchall() == pristine.execute(q).fetchall(), table


def test_q1_march_sales(pristine):
    total = sum(q * c for _, st, ts, q, c, _ in lines(pristine)
                if st in SALE and "2024-03-01 00:00:00" <= ts <= "2024-03-31 23:59:59")
    assert (ANSWERS / "q1.txt").read_text() == euros(total) + "\n"


def test_q2_top_customer(pristine):
    spend = defaultdict(int)
    for cust, st, _, q, c, _ in lines(pristine):
        if st in SALE:
            spend[cust] += q * c
    ranked = sorted(spend.items(), key=lambda kv: -kv[1])
    assert ranked[0][1] > ranked[1][1]
    email = pristine.execute("SELECT email FROM customers WHERE id = ?", (ranked[0][0],)).fetchone()[0]
    assert (ANSWERS / "q2.txt").read_text() == f"{email} {euros(ranked[0][1])}\n"


def test_q3_categories(pristine):
    buyers = defaultdict(set)
    for cust, st, _, _, _, cat in lines(pristine):
        if st in SALE:
            buyers[cat].add(cust)
    rows = sorted(((cat, len(c)) for cat, c in buyers.items()), key=lambda r: (-r[1], r[0]))
    want = "category,customers\n" + "".join(f"{c},{n}\n" for c, n in rows)
    assert (ANSWERS / "q3.csv").read_text().replace("\r\n", "\n") == want
