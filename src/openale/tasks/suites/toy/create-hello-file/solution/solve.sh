#!/bin/bash
set -euo pipefail
printf 'hello world\n' > /app/hello.txt
