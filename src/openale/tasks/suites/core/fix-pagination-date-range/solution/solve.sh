#!/bin/bash
set -euo pipefail
cd /app
python3 - <<'PY'
from pathlib import Path

p = Path("pager/pages.py")
s = p.read_text()
s = s.replace("return total_items // per_page + 1", "return -(-total_items // per_page)")
p.write_text(s)

d = Path("pager/dates.py")
s = d.read_text()
s = s.replace("while current < end:", "while current <= end:")
d.write_text(s)
PY
python3 -m pytest -q /app/tests
