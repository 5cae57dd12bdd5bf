#!/bin/bash
set -euo pipefail
cd /app/logs
{
  printf '{'
  sep=""
  for f in *.log; do
    n=$(awk '$2 == "ERROR"' "$f" | wc -l)
    printf '%s"%s": %d' "$sep" "${f%.log}" "$n"
    sep=", "
  done
  printf '}\n'
} > /app/report.json
