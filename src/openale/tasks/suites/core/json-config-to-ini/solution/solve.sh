#!/bin/bash
set -euo pipefail
install -m 0755 /solution/json2ini.py /app/bin/json2ini
sed -i '1i #!/usr/bin/env python3' /app/bin/json2ini
/app/bin/json2ini /app/config/service.json > /app/config/service.ini
cat /app/config/service.ini
