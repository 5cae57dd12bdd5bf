#!/bin/bash
set -euo pipefail
cd /app/data
python3 - <<'PY'
import csv, json, re
INT = re.compile(r"-?(0|[1-9][0-9]*)")
FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")
def typed(v):
    if v == "":
        return None
    if v in ("true", "false"):
        return v == "true"
    if INT.fullmatch(v):
        return int(v)
    if FLOAT.fullmatch(v):
        return float(v)
    return v
with open("vendors.csv", newline="", encoding="utf-8") as f, open("vendors.jsonl", "w", encoding="utf-8") as out:
    reader = csv.reader(f)
    header = next(reader)
    for row in reader:
        out.write(json.dumps(dict(zip(header, map(typed, row))), ensure_ascii=False) + "\n")
PY
