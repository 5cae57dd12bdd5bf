#!/bin/bash
set -euo pipefail
tr 'a-z' 'A-Z' < /app/quiet.txt > /app/loud.txt
