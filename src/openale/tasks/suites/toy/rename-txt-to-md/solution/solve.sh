#!/bin/bash
set -euo pipefail
for f in /app/docs/*.txt; do mv "$f" "${f%.txt}.md"; done
