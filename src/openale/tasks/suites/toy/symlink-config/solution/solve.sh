#!/bin/bash
set -euo pipefail
ln -s /app/configs/prod.conf /app/current.conf
