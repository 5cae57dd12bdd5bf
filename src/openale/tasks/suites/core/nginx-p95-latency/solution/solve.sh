#!/bin/bash
set -euo pipefail
cd /app
mkdir -p report
# count desc, then IP numerically octet by octet
awk '{ n[$1]++ } END { for (ip in n) { split(ip, o, "."); printf "%d %03d %03d %03d %03d %s\n", n[ip], o[1], o[2], o[3], o[4], ip } }' logs/access.log |
  sort -k1,1nr -k2,2n -k3,3n -k4,4n -k5,5n | head -5 | awk '{ print $1, $6 }' > report/top_ips.txt

# endpoint + milliseconds for well-formed requests: "METHOD PATH PROTO"
awk '$6 ~ /^"[A-Z]+$/ && $8 ~ /^HTTP\/[0-9.]+"$/ {
       path = $7; sub(/\?.*/, "", path)
       ms = $NF * 1000
       printf "%s %d\n", path, int(ms + 0.5)
     }' logs/access.log | sort -k1,1 -k2,2n |
  awk '{ p[$1] = p[$1] " " $2; c[$1]++ }
       END {
         for (e in c) {
           split(substr(p[e], 2), v, " ")
           k = int((95 * c[e] + 99) / 100)
           print e "," c[e] "," v[k]
         }
       }' | LC_ALL=C sort -t, -k1,1 > report/body.csv
{ echo "endpoint,requests,p95_ms"; cat report/body.csv; } > report/endpoint_p95.csv
rm report/body.csv
cat report/top_ips.txt report/endpoint_p95.csv
