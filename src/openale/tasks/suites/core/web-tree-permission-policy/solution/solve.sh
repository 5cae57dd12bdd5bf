#!/bin/bash
set -euo pipefail
www=/app/www
chown -R deploy:www-data "$www"          # -R does not follow links; links are changed themselves
find "$www" -type d -exec chmod 00755 {} +   # 5 digits: also clears setgid/sticky on directories
find "$www" -type f -exec chmod 0644 {} +
find "$www/bin" -type f -exec chmod 0750 {} +
find "$www" -type f -name '*.sh' -exec chmod 0750 {} +
find "$www/uploads" -type d -exec chmod 02775 {} +
find "$www/uploads" -type f -exec chmod 0664 {} +
chmod 0600 "$www/config/secrets.env"
find "$www" -printf '%m %u:%g %p\n'
