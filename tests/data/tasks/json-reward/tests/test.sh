#!/bin/bash
if [ "$(cat /app/out.txt 2>/dev/null)" = done ]; then r=0.75; else r=0; fi
echo "{\"reward\": $r, \"checks\": 4}" > /logs/verifier/reward.json
