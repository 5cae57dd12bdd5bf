#!/bin/bash
set -euo pipefail
mv /app/draft.txt /app/final.txt
