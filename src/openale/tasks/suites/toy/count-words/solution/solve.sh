#!/bin/bash
set -euo pipefail
wc -w < /app/poem.txt > /app/answer.txt
