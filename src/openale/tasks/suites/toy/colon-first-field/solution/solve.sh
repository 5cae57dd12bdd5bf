#!/bin/bash
set -euo pipefail
cut -d: -f1 /app/users.txt > /app/usernames.txt
