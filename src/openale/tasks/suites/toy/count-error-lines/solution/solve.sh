#!/bin/bash
set -euo pipefail
grep -c ERROR /app/app.log > /app/answer.txt
