#!/bin/bash
set -euo pipefail
sort -u /app/colors.txt > /app/unique.txt
