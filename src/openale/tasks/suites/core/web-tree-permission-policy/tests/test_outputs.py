import grp
import os
import pwd
import stat
from pathlib import Path

WWW = Path("/app/www")
FILES = [
    "index.html", "about us.html", "-draft.html", "assets/css/site.css", "assets/js/app.js",
    "assets/img/logo.png", "bin/deploy", "bin/rotate-logs", "bin/lib/helpers.py", "tools/cleanup.sh",
    "config/app.yml", "config/secrets.env", "uploads/2024/photo.jpg", "uploads/2024/avatar.sh",
    "uploads/.htaccess", "releases/v2/index.html",
]
DIRS = ["", "assets", "assets/css", "assets/js", "assets/img", "bin", "bin/lib", "tools", "config",
        "uploads", "uploads/2024", "releases", "releases/v1", "releases/v2"]
LINKS = {"current": "releases/v2", "config/quota.conf": "/app/shared/quota.conf"}


def expected_mode(rel, is_dir):
    mode = 0o755 if is_dir else 0o644
    if not is_dir and (rel.startswith("bin/") or rel.endswith(".sh")):
        mode = 0o750
    if rel == "uploads" or rel.startswith("uploads/"):
        mode = 0o2775 if is_dir else 0o664
    if rel == "config/secrets.env":
        mode = 0o600
    return mode


def walk():
    found = {}
    for root, dirs, files in os.walk(WWW):
        for name in dirs + files:
            p = Path(root) / name
            found[str(p.relative_to(WWW))] = p
    return found


def test_nothing_added_or_removed():
    assert set(walk()) == set(FILES) | set(d for d in DIRS if d) | set(LINKS)


def test_links_untouched():
    for rel, target in LINKS.items():
        p = WWW / rel
        assert p.is_symlink() and os.readlink(p) == target, rel
    st = os.stat("/app/shared/quota.conf")
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and st.st_gid == 0


def test_ownership():
    uid = pwd.getpwnam("deploy").pw_uid
    gid = grp.getgrnam("www-data").gr_gid
    for rel in FILES + DIRS:
        st = os.lstat(WWW / rel)
        assert (st.st_uid, st.st_gid) == (uid, gid), rel


def test_modes():
    wrong = {}
    for rel in FILES + DIRS:
        st = os.lstat(WWW / rel)
        is_dir = stat.S_ISDIR(st.st_mode)
        assert is_dir == (rel in DIRS), rel
        want = expected_mode(rel, is_dir)
        if stat.S_IMODE(st.st_mode) != want:
            wrong[rel or "."] = (oct(stat.S_IMODE(st.st_mode)), oct(want))
    assert not wrong
