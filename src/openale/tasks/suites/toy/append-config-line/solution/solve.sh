#!/bin/bash
set -euo pipefail
echo port=8080 >> /app/server.conf
