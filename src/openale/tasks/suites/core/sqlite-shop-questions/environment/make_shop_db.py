"""Builds the shop database deterministically: python3 make_shop_db.py PATH."""
import random
import sqlite3
import sys

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents INTEGER NOT NULL          -- current list price
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled', 'refunded')),
    created_at TEXT NOT NULL               -- UTC, 'YYYY-MM-DD HH:MM:SS'
);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL,     -- price actually charged
    PRIMARY KEY (order_id, product_id)
);
"""


def build(path):
    rnd = random.Random(1312)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    firsts = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gil", "Hana", "Ivo", "Jun", "Kai", "Lea",
              "Max", "Nia", "Oto", "Pia", "Rui", "Sol", "Teo", "Uma", "Vic", "Wen", "Yas", "Zed"]
    for i, f in enumerate(firsts, 1):
        db.execute("INSERT INTO customers VALUES (?,?,?,?,?)",
                   (i, f"{f} {chr(64 + (i * 7) % 26 + 1)}.", f"{f.lower()}.{i}@example.net",
                    rnd.choice(["DE", "FR", "NL", "US", "JP"]), f"2023-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} 10:00:00"))
    cats = {"audio": ["Headphones", "Speaker", "Microphone"], "cables": ["USB-C cable", "HDMI cable"],
            "storage": ["SSD 1TB", "SD card 128GB", "USB stick"], "cases": ["Laptop sleeve"]}
    pid = 0
    for cat, names in cats.items():
        for n in names:
            pid += 1
            db.execute("INSERT INTO products VALUES (?,?,?,?,?)",
                       (pid, f"P-{pid:03d}", n, cat, rnd.choice([999, 1999, 4999, 8999, 12999])))
    products = db.execute("SELECT id, price_cents FROM products").fetchall()
    statuses = ["paid"] * 5 + ["shipped"] * 4 + ["pending", "cancelled", "refunded"]
    oid = 0

    def order(cust, status, ts, items):
        nonlocal oid
        oid += 1
        db.execute("INSERT INTO orders VALUES (?,?,?,?)", (oid, cust, status, ts))
        for p, q, price in items:
            db.execute("INSERT INTO order_items VALUES (?,?,?,?)", (oid, p, q, price))

    for _ in range(160):
        month = rnd.choice([2, 3, 3, 3, 4])
        day = rnd.randint(1, 29 if month == 2 else 30)
        ts = f"2024-{month:02d}-{day:02d} {rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
        items = []
        for p, price in rnd.sample(products, rnd.randint(1, 3)):
            charged = price if rnd.random() < 0.6 else int(price * rnd.choice([0.8, 0.9, 0.85]))
            items.append((p, rnd.randint(1, 4), charged))
        order(rnd.randint(1, 22), rnd.choice(statuses), ts, items)
    # boundary and decoy orders
    order(5, "paid", "2024-02-29 23:59:59", [(1, 3, 12999)])
    order(6, "shipped", "2024-03-01 00:00:00", [(2, 1, 4999)])
    order(7, "paid", "2024-03-31 23:59:59", [(3, 2, 1999)])
    order(8, "paid", "2024-04-01 00:00:00", [(4, 5, 8999)])
    order(9, "cancelled", "2024-03-15 12:00:00", [(5, 40, 12999)])
    order(10, "refunded", "2024-03-16 12:00:00", [(6, 30, 8999)])
    order(23, "cancelled", "2024-03-10 09:00:00", [(7, 50, 12999)])   # big spender, but cancelled
    order(24, "pending", "2024-03-11 09:00:00", [(8, 60, 12999)])
    db.commit()
    db.close()


if __name__ == "__main__":
    build(sys.argv[1])
