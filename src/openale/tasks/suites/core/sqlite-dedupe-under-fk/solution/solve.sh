#!/bin/bash
set -euo pipefail
cd /app
python3 - <<'PY'
import sqlite3
from collections import defaultdict

db = sqlite3.connect("/app/crm.db", isolation_level=None)
db.execute("PRAGMA foreign_keys = ON")
groups = defaultdict(list)
for cid, email, created in db.execute("SELECT id, email, created_at FROM customers"):
    groups[email.strip(" ").lower()].append((created, cid))
plan = []
for members in groups.values():
    if len(members) > 1:
        members.sort()
        keep = members[0][1]
        plan.append((keep, sorted(cid for _, cid in members[1:])))
plan.sort()
db.execute("BEGIN IMMEDIATE")
for keep, removed in plan:
    for r in removed:
        db.execute("UPDATE orders SET customer_id = ? WHERE customer_id = ?", (keep, r))
        db.execute("UPDATE notes SET customer_id = ? WHERE customer_id = ?", (keep, r))
        db.execute("INSERT OR IGNORE INTO customer_tags (customer_id, tag) "
                   "SELECT ?, tag FROM customer_tags WHERE customer_id = ?", (keep, r))
        db.execute("DELETE FROM customer_tags WHERE customer_id = ?", (r,))
        db.execute("UPDATE customers SET referred_by = ? WHERE referred_by = ?", (keep, r))
for keep, removed in plan:
    for r in removed:
        db.execute("DELETE FROM customers WHERE id = ?", (r,))
assert db.execute("PRAGMA foreign_key_check").fetchall() == []
db.execute("COMMIT")
with open("/app/dedupe_report.csv", "w") as f:
    f.write("kept_id,removed_ids\n")
    for keep, removed in plan:
        f.write(f"{keep},{';'.join(map(str, removed))}\n")
print(len(plan), "groups merged")
PY
