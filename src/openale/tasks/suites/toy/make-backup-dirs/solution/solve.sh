#!/bin/bash
set -euo pipefail
mkdir -p /app/backup/daily /app/backup/weekly
