#!/bin/bash
set -euo pipefail
cd /app/logs
python3 - <<'PY'
import collections, datetime as dt, gzip, glob, re
line_re = re.compile(r'^\S+ \S+ \S+ \[([^\]]+)\] "(?:[^"\\]|\\.)*" (\d{3}) \S+$')
counts = collections.Counter()
for name in glob.glob("api-access.log*"):
    opener = gzip.open if name.endswith(".gz") else open
    with opener(name, "rt") as f:
        for line in f:
            m = line_re.match(line.rstrip("\n"))
            if m and m.group(2).startswith("5"):
                t = dt.datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S %z").astimezone(dt.timezone.utc)
                counts[t.strftime("%Y-%m-%dT%H:%MZ")] += 1
minute, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
open("/app/peak_5xx.txt", "w").write(f"{minute} {n}\n")
print(minute, n)
PY
