#!/bin/bash
set -euo pipefail
cp /app/config.ini /app/config.ini.bak
