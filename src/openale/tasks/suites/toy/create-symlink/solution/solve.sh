#!/bin/bash
set -euo pipefail
ln -s /app/releases/v2 /app/latest
