#!/bin/bash
set -euo pipefail
cd /app
{
  printf 'region\tunits\trevenue\n'
  awk '/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]/ {
         region = substr($0, 12, 14); sub(/ +$/, "", region)
         qty = substr($0, 46, 6) + 0
         price = substr($0, 52, 11); gsub(/[ ,]/, "", price)
         units[region] += qty
         cents[region] += qty * int(price * 100 + 0.5)
       }
       END { for (r in units) printf "%s\t%d\t%d.%02d\n", r, units[r], int(cents[r] / 100), cents[r] % 100 }' \
    reports/sales_ledger.txt |
  sort -t "$(printf '\t')" -k3,3gr -k1,1
} > region_totals.tsv
cat region_totals.tsv
