#!/bin/bash
set -euo pipefail
tr 'A-Z' 'a-z' < /app/shout.txt > /app/calm.txt
