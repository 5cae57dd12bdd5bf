#!/bin/bash
set -euo pipefail
touch /app/empty.txt
