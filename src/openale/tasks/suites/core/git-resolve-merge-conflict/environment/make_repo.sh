#!/bin/bash
set -euo pipefail
mkdir -p /app/project && cd /app/project
git init -q -b main
n=0
commit() {
  n=$((n + 1))
  local when="2024-05-1${n}T09:30:00+00:00"
  git add -A
  GIT_AUTHOR_DATE="$when" GIT_COMMITTER_DATE="$when" git commit -q -m "$1"
}
mkdir tests
printf '__pycache__/\n.pytest_cache/\n' > .gitignore
cat > mathutils.py <<'PY'
"""Small numeric helpers."""

__version__ = "1.2.0"


def mean(values):
    """Arithmetic mean of a non-empty sequence."""
    values = list(values)
    if not values:
        raise ValueError("mean of empty data")
    return sum(values) / len(values)


def clamp(x, lo, hi):
    """x limited to the closed interval [lo, hi]."""
    return max(lo, min(hi, x))
PY
cat > tests/test_mathutils.py <<'PY'
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mathutils


def test_mean():
    assert mathutils.mean([1, 2, 3, 4]) == 2.5


def test_mean_empty():
    with pytest.raises(ValueError):
        mathutils.mean([])


def test_clamp():
    assert mathutils.clamp(5, 0, 3) == 3
    assert mathutils.clamp(-1, 0, 3) == 0
PY
cat > CHANGELOG.md <<'MD'
# Changelog

## 1.2.0
- Add clamp().

## 1.1.0
- Add mean().
MD
commit "Release 1.2.0"

git checkout -q -b feature/stats
python3 - <<'PY'
from pathlib import Path
p = Path("mathutils.py")
s = p.read_text()
s = s.replace('"""Small numeric helpers."""\n', '"""Small numeric helpers."""\n\nfrom collections import Counter\n')
s = s.replace('__version__ = "1.2.0"', '__version__ = "1.3.0"')
s = s.replace('''    return sum(values) / len(values)
''', '''    return sum(values) / len(values)


def mode(values):
    """Most common value; ties go to the smallest value."""
    counts = Counter(values)
    if not counts:
        raise ValueError("mode of empty data")
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best)
''')
p.write_text(s)
p = Path("tests/test_mathutils.py")
p.write_text(p.read_text() + '''

def test_mode():
    assert mathutils.mode([1, 2, 2, 3]) == 2
    assert mathutils.mode([3, 1, 3, 1]) == 1
    with pytest.raises(ValueError):
        mathutils.mode([])
''')
p = Path("CHANGELOG.md")
p.write_text(p.read_text().replace("# Changelog\n\n", "# Changelog\n\n## 1.3.0\n- Add mode().\n\n"))
PY
commit "Add mode()"

git checkout -q main
python3 - <<'PY'
from pathlib import Path
p = Path("mathutils.py")
s = p.read_text()
s = s.replace('__version__ = "1.2.0"', '__version__ = "1.2.1"')
s = s.replace('''    return sum(values) / len(values)
''', '''    return sum(values) / len(values)


def median(values):
    """Middle value of a non-empty sequence (mean of the two middle ones for even sizes)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of empty data")
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2
''')
p.write_text(s)
p = Path("tests/test_mathutils.py")
p.write_text(p.read_text() + '''

def test_median():
    assert mathutils.median([3, 1, 2]) == 2
    assert mathutils.median([4, 1, 3, 2]) == 2.5
''')
p = Path("CHANGELOG.md")
p.write_text(p.read_text().replace("# Changelog\n\n", "# Changelog\n\n## 1.2.1\n- Add median().\n\n"))
PY
commit "Add median()"
git gc -q
