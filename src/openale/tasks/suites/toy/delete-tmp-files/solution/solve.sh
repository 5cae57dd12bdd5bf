#!/bin/bash
set -euo pipefail
rm -f /app/work/*.tmp
