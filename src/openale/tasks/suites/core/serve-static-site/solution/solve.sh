#!/bin/bash
set -euo pipefail
cd /app/site/releases
ls tool-*.tar.gz | sed -E 's/^tool-(.*)\.tar\.gz$/\1/' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' \
  | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1 > latest.txt
cat latest.txt
cd /app/site
setsid nohup python3 -m http.server 8080 --bind 0.0.0.0 --directory /app/site > /tmp/http-server.log 2>&1 < /dev/null &
for _ in $(seq 100); do
  if curl -sf -o /dev/null http://127.0.0.1:8080/; then break; fi
  sleep 0.1
done
curl -sf http://127.0.0.1:8080/releases/latest.txt
