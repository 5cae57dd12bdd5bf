#!/bin/bash
set -euo pipefail
mkdir -p /app/notes && cd /app/notes
git init -q -b main
commit() { # commit DATE MESSAGE
  git add -A
  GIT_AUTHOR_DATE="$1" GIT_COMMITTER_DATE="$1" git commit -q -m "$2"
}
cat > README.md <<'MD'
# finance-notes

Scripts for the finance team.
MD
commit "2024-06-01T08:00:00+00:00" "Initial commit"

cat > loader.py <<'PY'
import csv


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
PY
commit "2024-06-02T08:00:00+00:00" "Add data loader"

cat > report.py <<'PY'
"""Quarterly revenue report."""
from loader import load

QUARTERS = {1: "Q1", 2: "Q1", 3: "Q1", 4: "Q2", 5: "Q2", 6: "Q2",
            7: "Q3", 8: "Q3", 9: "Q3", 10: "Q4", 11: "Q4", 12: "Q4"}


def quarterly_totals(path):
    totals = {}
    for row in load(path):
        q = QUARTERS[int(row["month"])]
        totals[q] = totals.get(q, 0) + float(row["revenue"])
    return totals  # report-token: 7f3a9c
PY
cat >> README.md <<'MD'

- `report.py`: quarterly revenue totals.
MD
commit "2024-06-03T08:00:00+00:00" "Add quarterly report generator"
git reset -q --hard HEAD~1

cat > export.py <<'PY'
import csv


def export(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
PY
commit "2024-06-04T08:00:00+00:00" "Add CSV export"

echo "scratch" > scratch.txt
commit "2024-06-05T08:00:00+00:00" "WIP: scratch experiments"
git reset -q --hard HEAD~1

git checkout -q -b docs
echo "See README.md." > NOTES.md
commit "2024-06-06T08:00:00+00:00" "Add notes"
git checkout -q main
