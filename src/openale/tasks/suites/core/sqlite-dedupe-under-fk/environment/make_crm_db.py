"""Builds the CRM database deterministically: python3 make_crm_db.py PATH."""
import random
import sqlite3
import sys

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    name TEXT,
    created_at TEXT NOT NULL,              -- UTC 'YYYY-MM-DD HH:MM:SS'
    referred_by INTEGER REFERENCES customers(id) ON DELETE SET NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE RESTRICT,
    total_cents INTEGER NOT NULL,
    placed_at TEXT NOT NULL
);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    body TEXT NOT NULL
);
CREATE TABLE customer_tags (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag)
);
CREATE INDEX idx_orders_customer ON orders(customer_id);
CREATE INDEX idx_notes_customer ON notes(customer_id);
"""


def ts(rnd, year=None):
    return (f"{year or rnd.randint(2019, 2023)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} "
            f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}")


def build(path):
    rnd = random.Random(8080)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    people = [f"person{i:03d}" for i in range(260)]
    rows = []
    for p in people:
        rows.append([p, ts(rnd)])
        r = rnd.random()
        if r < 0.18:
            rows.append([p, ts(rnd)])
        elif r < 0.24:
            rows.append([p, ts(rnd)])
            rows.append([p, ts(rnd)])
    # a group whose members were created in the very same second
    rows.append(["twin", "2021-06-01 12:00:00"])
    rows.append(["twin", "2021-06-01 12:00:00"])
    rnd.shuffle(rows)
    ids = {}
    for i, (p, created) in enumerate(rows, start=1):
        dom = "example.com" if p == "twin" else ["example.com", "mail.test", "corp.example"][int(p[-3:]) % 3]
        email = f"{p}@{dom}"
        style = rnd.random()
        if style < 0.15:
            email = email.upper()
        elif style < 0.25:
            email = f" {email}  "
        elif style < 0.32:
            email = email.capitalize()
        ids.setdefault(p, []).append(i)
        db.execute("INSERT INTO customers (id, email, name, created_at) VALUES (?,?,?,?)",
                   (i, email, f"{p.title()} ({i})", created))
    n = len(rows)
    person_of = {i: p for p, members in ids.items() for i in members}
    for i in range(1, n + 1):
        if rnd.random() < 0.2:
            ref = rnd.randint(1, n)
            if person_of[ref] != person_of[i]:
                db.execute("UPDATE customers SET referred_by = ? WHERE id = ?", (ref, i))
    oid = nid = 0
    tags = ["vip", "newsletter", "b2b", "churn-risk", "gdpr-export"]
    for i in range(1, n + 1):
        for _ in range(rnd.choice([0, 0, 1, 2, 3])):
            oid += 1
            db.execute("INSERT INTO orders VALUES (?,?,?,?)", (oid, i, rnd.randint(500, 90000), ts(rnd, 2024)))
        for _ in range(rnd.choice([0, 1, 1, 2])):
            nid += 1
            db.execute("INSERT INTO notes VALUES (?,?,?)", (nid, i, f"call log #{nid} for customer {i}"))
        for t in rnd.sample(tags, rnd.choice([0, 1, 1, 2, 3])):
            db.execute("INSERT INTO customer_tags VALUES (?,?)", (i, t))
    db.commit()
    db.close()


if __name__ == "__main__":
    build(sys.argv[1])
