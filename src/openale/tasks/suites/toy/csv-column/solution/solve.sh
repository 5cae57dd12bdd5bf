#!/bin/bash
set -euo pipefail
cut -d, -f2 /app/people.csv > /app/names.txt
