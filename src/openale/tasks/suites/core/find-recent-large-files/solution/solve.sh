#!/bin/bash
set -euo pipefail
cat > /app/findrecent.sh <<'SH'
#!/bin/bash
# findrecent.sh DIR DAYS MINSIZE -- large files modified in the last DAYS days.
set -euo pipefail
export LC_ALL=C TZ=UTC

die() { echo "findrecent: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: findrecent.sh DIR DAYS MINSIZE"
dir=$1 days=$2 minsize=$3
[ -d "$dir" ] || die "not a directory: $dir"
[[ $days =~ ^[0-9]+$ ]] && [ "$((10#$days))" -ge 1 ] || die "DAYS must be a positive integer: $days"
[[ $minsize =~ ^([0-9]+)([KMG]?)$ ]] || die "bad MINSIZE: $minsize"
bytes=$((10#${BASH_REMATCH[1]}))
case ${BASH_REMATCH[2]} in
    K) bytes=$((bytes * 1024)) ;;
    M) bytes=$((bytes * 1024 * 1024)) ;;
    G) bytes=$((bytes * 1024 * 1024 * 1024)) ;;
esac
cutoff=$(( $(date +%s) - 10#$days * 86400 ))

find "$dir" -mindepth 1 -type f -printf '%s\t%T@\t%TY-%Tm-%Td %TH:%TM:%TS\t%P\n' |
awk -F'\t' -v min="$bytes" -v cutoff="$cutoff" 'BEGIN { OFS = "\t" }
    $1 + 0 > min + 0 && $2 + 0 > cutoff + 0 { sub(/\.[0-9]*$/, "", $3); print $1, $3, $4 }' |
sort -t "$(printf '\t')" -k1,1nr -k3,3 |
awk -F'\t' '{ print; n++; s += $1 } END { printf "total: %d files, %.0f bytes\n", n, s }'
SH
chmod +x /app/findrecent.sh
/app/findrecent.sh /app/data 30 10K
