#!/bin/bash
set -euo pipefail
cd /app/repo
git checkout -b release-1.0.x v1.0
crash=$(git log develop --format=%H --fixed-strings --grep='Fix crash on empty input' -n 1)
# exact subject match: the experimental branch has a similarly named commit, develop may too
page=$(git log develop --format='%H %s' | awk '$0 ~ / Fix off-by-one in page count$/ {print $1; exit}')
git cherry-pick "$crash" "$page"
echo "1.0.1" > VERSION
git commit -am "Release 1.0.1"
git tag -a v1.0.1 -m "Version 1.0.1"
git status --short
git log --oneline -4
