#!/bin/bash
set -euo pipefail
cd /app/project
git checkout main
git merge feature/stats || true
python3 - <<'PY'
import re
from pathlib import Path

CONFLICT = re.compile(r"<<<<<<< [^\n]*\n(.*?)=======\n(.*?)>>>>>>> [^\n]*\n", re.S)

def resolve(path, choose):
    p = Path(path)
    p.write_text(CONFLICT.sub(lambda m: choose(m.group(1), m.group(2)), p.read_text()))

def mathutils(ours, theirs):
    if "__version__" in ours:
        return theirs
    return ours.rstrip("\n") + "\n\n\n" + theirs.lstrip("\n")

resolve("mathutils.py", mathutils)
resolve("CHANGELOG.md", lambda ours, theirs: theirs.rstrip("\n") + "\n\n" + ours)  # 1.3.0 above 1.2.1
resolve("tests/test_mathutils.py", lambda ours, theirs: ours.rstrip("\n") + "\n\n\n" + theirs.lstrip("\n"))
PY
cat mathutils.py CHANGELOG.md
python3 -m pytest -q tests
git add mathutils.py CHANGELOG.md tests/test_mathutils.py
git commit --no-edit
git log --oneline --graph -5
