#!/bin/bash
set -euo pipefail
cd /app/docs
find . -type f -name '*.txt' -print0 | xargs -0 perl -0777 -pi -e '
  s/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/[EMAIL]/g;
  s/(?<![A-Za-z0-9])(?:\+1[ -])?(?:\([0-9]{3}\) [0-9]{3}-[0-9]{4}|[0-9]{3}-[0-9]{3}-[0-9]{4}|[0-9]{3}\.[0-9]{3}\.[0-9]{4})(?![A-Za-z0-9])/[PHONE]/g;
'
