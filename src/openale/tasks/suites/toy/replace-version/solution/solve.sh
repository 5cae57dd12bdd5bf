#!/bin/bash
set -euo pipefail
sed -i 's/^version=1$/version=2/' /app/app.conf
