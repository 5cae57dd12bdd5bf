#!/usr/bin/env bash
# Make sure a Docker engine answers: start dockerd by hand when none runs
# (these machines have no systemd), then wait until it responds.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log=/var/log/openale-dockerd.log
echo "starting dockerd (log: $log)"
$SUDO sh -c "nohup dockerd >>$log 2>&1 &"
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "dockerd is up"; exit 0; fi
  sleep 1
done
echo "dockerd did not answer within 60s; last log lines:" >&2
tail -n 20 "$log" >&2 || true
exit 1
