#!/bin/bash
set -euo pipefail
work=$(mktemp -d)
tar -xzf /app/backups/site-backup-2024-06-30.tar.gz -C "$work" site/exports/reports-2024-q2.zip
mkdir -p "$work/zip" /app/restore
unzip -q "$work/site/exports/reports-2024-q2.zip" -d "$work/zip"
cp "$work/zip/reports/2024/06/summary.csv" /app/restore/summary.csv
(cd "$work/zip" && find . -type f -printf '%P\n' | LC_ALL=C sort | while IFS= read -r f; do sha256sum "$f"; done) \
  > /app/restore/MANIFEST.sha256
rm -rf "$work"
cat /app/restore/MANIFEST.sha256
