"""Builds the v1 application database deterministically: python3 make_app_db.py PATH."""
import random
import sqlite3
import sys

SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    full_name TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token TEXT NOT NULL UNIQUE,
    last_seen TEXT NOT NULL
);
CREATE INDEX idx_sessions_user ON sessions(user_id);
CREATE VIEW recent_users AS SELECT id, email FROM users WHERE created_at >= '2024-01-01';
PRAGMA user_version = 1;
"""


def build(path):
    rnd = random.Random(2024)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    domains = ["example.com", "Example.COM", "mail.example.org", "corp.acme.io", "gmail.com", "uni-bonn.de"]
    users = []
    for i in range(1, 1201):
        local = f"user{i}" if i % 5 else f"First.Last{i}"
        dom = rnd.choice(domains)
        email = f"{local}@{dom}"
        r = rnd.random()
        if r < 0.05:
            email = f"  {email} "
        elif r < 0.07:
            email = email.upper()
        elif r < 0.08:
            email = "n/a"
        elif r < 0.085:
            email = ""
        name = None if i % 17 == 0 else f"User Number {i}"
        users.append((i, email, name, f"20{rnd.randint(21, 24)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"))
    db.executemany("INSERT INTO users VALUES (?,?,?,?)", users)
    sessions = [(j, rnd.randint(1, 1200), f"tok{rnd.getrandbits(64):016x}{j}", "2024-06-01") for j in range(1, 3001)]
    db.executemany("INSERT INTO sessions VALUES (?,?,?,?)", sessions)
    db.commit()
    db.close()


if __name__ == "__main__":
    build(sys.argv[1])
