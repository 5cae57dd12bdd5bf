#!/bin/bash
set -euo pipefail
echo '{"name": "alice", "age": 30}' > /app/user.json
