#!/bin/bash
set -euo pipefail
head -n 1 /app/names.txt > /app/answer.txt
