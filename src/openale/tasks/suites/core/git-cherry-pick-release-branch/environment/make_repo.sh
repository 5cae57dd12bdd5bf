#!/bin/bash
# Builds /app/repo with a fixed history (fixed dates, so the hashes are stable).
set -euo pipefail
mkdir -p /app/repo && cd /app/repo
git init -q -b main
n=0
commit() { # commit AUTHOR_NAME AUTHOR_EMAIL MESSAGE
  n=$((n + 1))
  local when="2024-03-0$((n % 9 + 1))T1$((n % 10)):00:00+00:00"
  git add -A
  GIT_AUTHOR_NAME="$1" GIT_AUTHOR_EMAIL="$2" GIT_AUTHOR_DATE="$when" \
  GIT_COMMITTER_NAME="Release Bot" GIT_COMMITTER_EMAIL="bot@example.com" GIT_COMMITTER_DATE="$when" \
    git commit -q -m "$3"
}
mkdir -p inv
cat > inv/__init__.py <<'PY'
__all__ = ["cli", "parse", "pager"]
PY
cat > inv/parse.py <<'PY'
"""Parsing inventory records: one 'sku,qty' pair per line."""


def parse_records(text):
    records = []
    for line in text.splitlines():
        sku, qty = line.split(",")
        records.append((sku.strip(), int(qty)))
    return records
PY
cat > inv/cli.py <<'PY'
import sys

from inv.parse import parse_records


def main(argv=None):
    data = sys.stdin.read()
    for sku, qty in parse_records(data):
        print(f"{sku}: {qty}")
    return 0
PY
cat > README.md <<'MD'
# inv

A tiny inventory tool.
MD
echo "1.0.0" > VERSION
commit "Ana Lima" "ana@example.com" "Initial import"

cat > inv/pager.py <<'PY'
"""Splitting listings into pages."""


def page_count(total, per_page):
    return total // per_page + 1


def page(items, number, per_page):
    start = (number - 1) * per_page
    return items[start:start + per_page]
PY
commit "Ana Lima" "ana@example.com" "Add pager module"
git tag v1.0

# main moves on after the release
mkdir -p .ci && printf 'steps:\n  - run: python3 -m pytest\n' > .ci/pipeline.yml
commit "Ana Lima" "ana@example.com" "Add CI pipeline"

git checkout -q -b develop v1.0
cat > inv/cli.py <<'PY'
import sys

from inv.parse import parse_records


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in argv
    data = sys.stdin.read()
    records = parse_records(data)
    for sku, qty in records:
        print(f"{sku}: {qty}")
    if verbose:
        print(f"{len(records)} records", file=sys.stderr)
    return 0
PY
commit "Ben Okafor" "ben@example.com" "Add --verbose flag to CLI"

cat > inv/parse.py <<'PY'
"""Parsing inventory records: one 'sku,qty' pair per line."""


def parse_records(text):
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        sku, qty = line.split(",")
        records.append((sku.strip(), int(qty)))
    return records
PY
commit "Chen Wei" "chen@example.com" "Fix crash on empty input"

cat > README.md <<'MD'
# inv

A tiny inventory tool.

    inv < records.csv [--verbose]

Each input line is `sku,qty`.
MD
commit "Ben Okafor" "ben@example.com" "Rewrite README for 1.1"

git checkout -q -b experimental
cat > inv/pager.py <<'PY'
"""Splitting listings into pages."""
import math


def page_count(total, per_page):
    return max(1, math.ceil(total / per_page))


def page(items, number, per_page):
    start = (number - 1) * per_page
    return items[start:start + per_page]
PY
commit "Ben Okafor" "ben@example.com" "Fix off-by-one in page count (experiment)"

git checkout -q develop
cat > inv/pager.py <<'PY'
"""Splitting listings into pages."""


def page_count(total, per_page):
    return -(-total // per_page)


def page(items, number, per_page):
    start = (number - 1) * per_page
    return items[start:start + per_page]
PY
commit "Dana Kruger" "dana@example.com" "Fix off-by-one in page count"

echo "1.1.0" > VERSION
commit "Ana Lima" "ana@example.com" "Bump version to 1.1.0"
git tag -a v1.1 -m "Version 1.1"

git checkout -q main
git gc -q
