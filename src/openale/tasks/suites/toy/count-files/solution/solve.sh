#!/bin/bash
set -euo pipefail
ls /app/inbox | wc -l > /app/answer.txt
