#!/bin/bash
set -euo pipefail
sed -i 's/cat/dog/g' /app/pets.txt
