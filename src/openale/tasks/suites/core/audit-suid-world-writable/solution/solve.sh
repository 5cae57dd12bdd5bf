#!/bin/bash
set -euo pipefail
mkdir -p /app/audit
python3 - <<'PY'
import os, stat
root = "/app/srv"
allow = set()
for line in open("/app/srv/etc/suid-allowlist"):
    line = line.strip()
    if line and not line.startswith("#"):
        allow.add(line)
findings, fixes = [], {}
paths = [root]
for d, dirs, files in os.walk(root):
    paths += [os.path.join(d, n) for n in dirs + files]
for p in paths:
    st = os.lstat(p)
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        continue
    mode = stat.S_IMODE(st.st_mode)
    new = mode
    if mode & stat.S_IWOTH and not (stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX):
        findings.append((p, "WORLD_WRITABLE", "fixed")); new &= ~stat.S_IWOTH
    if stat.S_ISREG(st.st_mode):
        for bit, name in ((stat.S_ISUID, "SETUID"), (stat.S_ISGID, "SETGID")):
            if mode & bit:
                if p in allow:
                    findings.append((p, name, "allowed"))
                else:
                    findings.append((p, name, "fixed")); new &= ~bit
    if new != mode:
        fixes[p] = new
findings.sort(key=lambda f: (f[0].encode(), f[1].encode()))
with open("/app/audit/findings.txt", "w") as out:
    for p, t, a in findings:
        out.write(f"{t} {a} {p}\n")
for p, m in fixes.items():
    os.chmod(p, m, follow_symlinks=False)
PY
cat /app/audit/findings.txt
