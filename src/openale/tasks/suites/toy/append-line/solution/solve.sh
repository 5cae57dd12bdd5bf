#!/bin/bash
set -euo pipefail
echo cherry >> /app/fruits.txt
