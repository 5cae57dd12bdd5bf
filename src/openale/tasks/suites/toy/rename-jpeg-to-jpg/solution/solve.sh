#!/bin/bash
set -euo pipefail
for f in /app/photos/*.jpeg; do mv "$f" "${f%.jpeg}.jpg"; done
