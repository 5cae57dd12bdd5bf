#!/bin/bash
set -euo pipefail
cat > /app/rotate.sh <<'SH'
#!/bin/bash
# rotate.sh LOGFILE [KEEP] -- rotate LOGFILE, keeping KEEP archives (LOGFILE.1, LOGFILE.2.gz, ...).
set -euo pipefail

usage() {
    echo "usage: $0 LOGFILE [KEEP]   (KEEP: positive integer, default 5)" >&2
    exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
log=$1
keep=${2:-5}
[ -n "$log" ] || usage
[[ $keep =~ ^[0-9]+$ ]] && [ "$((10#$keep))" -ge 1 ] || usage
keep=$((10#$keep))

[ -f "$log" ] && [ -s "$log" ] || exit 0

# drop leftovers numbered above KEEP (and the one that would be shifted past it)
shopt -s nullglob
for f in "$log".[0-9]* ; do
    suffix=${f#"$log".}
    n=${suffix%.gz}
    [[ $n =~ ^[0-9]+$ ]] || continue
    [ "$suffix" = "$n" ] || [ "$suffix" = "$n.gz" ] || continue
    if [ "$((10#$n))" -ge "$keep" ]; then
        rm -f -- "$f"
    fi
done

# shift the compressed archives up by one
for ((i = keep - 1; i >= 2; i--)); do
    if [ -e "$log.$i.gz" ]; then
        mv -f -- "$log.$i.gz" "$log.$((i + 1)).gz"
    fi
done

# the previous uncompressed archive becomes .2.gz
if [ -e "$log.1" ]; then
    if [ "$keep" -ge 2 ]; then
        gzip -c -- "$log.1" > "$log.2.gz.tmp"
        mv -f -- "$log.2.gz.tmp" "$log.2.gz"
    fi
    rm -f -- "$log.1"
fi

mode=$(stat -c %a -- "$log")
mv -- "$log" "$log.1"
: > "$log"
chmod "$mode" -- "$log"
SH
chmod +x /app/rotate.sh
cd /app/logs
/app/rotate.sh service.log 3
ls -l /app/logs
