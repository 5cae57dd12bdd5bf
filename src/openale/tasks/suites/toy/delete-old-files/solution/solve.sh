#!/bin/bash
set -euo pipefail
rm -f /app/cache/old_*
