#!/bin/bash
set -euo pipefail
mkdir -p /app/dist
cd /app
tar --sort=name --format=gnu --mtime=@1704067200 \
    --owner=0 --group=0 --numeric-owner \
    --exclude=.git --exclude=__pycache__ --exclude=node_modules --exclude=.env \
    --exclude='*.pyc' --exclude='*.log' \
    --transform='s,^project,myapp-1.4.0,S' \
    -cf - project | gzip -9n > dist/myapp-1.4.0.tar.gz
cd dist
sha256sum myapp-1.4.0.tar.gz > myapp-1.4.0.tar.gz.sha256
cat myapp-1.4.0.tar.gz.sha256
