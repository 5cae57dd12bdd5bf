#!/bin/bash
set -euo pipefail
head -n 3 /app/events.log > /app/top.txt
