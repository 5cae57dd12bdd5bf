#!/bin/bash
set -euo pipefail
sort -u /app/visitors.txt | wc -l > /app/answer.txt
