#!/bin/bash
set -euo pipefail
echo '["red", "green", "blue"]' > /app/colors.json
