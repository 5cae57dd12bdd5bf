#!/bin/bash
set -euo pipefail
tail -n 1 /app/cities.txt > /app/answer.txt
