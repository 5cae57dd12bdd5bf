import hashlib
import os
import stat
from pathlib import Path

ROOT = "/app/srv"
HERE = Path(__file__).parent


def layout():
    """(kind, mode-or-target, absolute path) as planted at build time."""
    entries = [("d", 0o755, ROOT)]
    for line in (HERE / "layout.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, arg, rel = line.split(None, 2)
        entries.append((kind, arg if kind == "l" else int(arg, 8), f"{ROOT}/{rel}"))
    return entries


def allowlist():
    lines = Path(f"{ROOT}/etc/suid-allowlist").read_text().splitlines()
    return {l.strip() for l in lines if l.strip() and not l.strip().startswith("#")}


def expected():
    allow = allowlist()
    findings, final = [], {}
    for kind, mode, path in layout():
        if kind == "l":
            continue
        new = mode
        if mode & 0o002 and not (kind == "d" and mode & 0o1000):
            findings.append((path, "WORLD_WRITABLE", "fixed"))
            new &= ~0o002
        if kind == "f":
            for bit, name in ((0o4000, "SETUID"), (0o2000, "SETGID")):
                if mode & bit:
                    ok = path in allow
                    findings.append((path, name, "allowed" if ok else "fixed"))
                    if not ok:
                        new &= ~bit
        final[path] = new
    findings.sort(key=lambda f: (f[0].encode(), f[1].encode()))
    return findings, final


def test_report():
    findings, _ = expected()
    want = "".join(f"{t} {a} {p}\n" for p, t, a in findings)
    assert Path("/app/audit/findings.txt").read_text() == want


def test_modes_fixed_exactly():
    _, final = expected()
    wrong = {}
    for path, mode in final.items():
        st = os.lstat(path)
        if stat.S_IMODE(st.st_mode) != mode:
            wrong[path] = (oct(stat.S_IMODE(st.st_mode)), oct(mode))
    assert not wrong


def test_links_and_outside_untouched():
    for kind, target, path in layout():
        if kind == "l":
            assert os.path.islink(path) and os.readlink(path) == target, path
    assert stat.S_IMODE(os.stat("/usr/bin/passwd").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(f"{ROOT}/etc/app.conf").st_mode) == 0o664


def test_owners_and_contents_unchanged():
    for kind, _, path in layout():
        if kind == "f":
            st = os.lstat(path)
            assert st.st_uid == 0 and st.st_gid == 0, path
            if not path.endswith("suid-allowlist"):
                data = Path(path).read_text()
                assert data in ("#!/bin/sh\necho ok\n", f"data for {os.path.basename(path)}\n"), path
