import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

SCRIPT = "/app/findrecent.sh"
DAY = 86400


def run(*args):
    return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=30)


def make(root: Path, rel: str, size: int, age_s: float):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x" * size)
    t = int(time.time() - age_s)
    os.utime(p, (t, t))
    return p


def expected(root: Path, days: int, minsize: int):
    now = time.time()
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            st = p.stat()
            if st.st_size > minsize and st.st_mtime > now - days * DAY:
                stamp = datetime.fromtimestamp(int(st.st_mtime), timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                rows.append((st.st_size, str(p.relative_to(root)), stamp))
    rows.sort(key=lambda r: (-r[0], r[1].encode()))
    lines = [f"{s}\t{stamp}\t{rel}" for s, rel, stamp in rows]
    lines.append(f"total: {len(rows)} files, {sum(r[0] for r in rows)} bytes")
    return lines


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "root"
    make(root, "big-new.bin", 50_000, 2 * 3600)
    make(root, "big-old.bin", 90_000, 10 * DAY)
    make(root, "small-new.txt", 100, 60)
    make(root, "exact.bin", 10240, 3600)          # == 10K: not larger
    make(root, "just-over.bin", 10241, 3600)
    make(root, "sub dir/with space.log", 20_000, 3 * DAY)
    make(root, "sub dir/deeper/z.dat", 20_000, 1 * DAY)
    make(root, "sub dir/deeper/a.dat", 20_000, 6 * DAY + 20 * 3600)   # inside 7 days
    make(root, ".hidden/secret.key", 15_000, 3600)
    make(root, ".dotfile", 12_000, 3600)
    make(root, "edge-old.bin", 30_000, 7 * DAY + 3600)                # just outside 7 days
    make(root, "B-upper.bin", 20_000, 3600)
    (root / "empty-dir").mkdir()
    os.symlink(root / "big-new.bin", root / "link-to-big")
    os.symlink(root / "sub dir", root / "link-to-dir")
    return root


def test_listing_7_days_10k(tree):
    r = run(tree, 7, "10K")
    assert r.returncode == 0, r.stderr
    want = expected(tree, 7, 10240)
    assert r.stdout.splitlines() == want
    names = [line.split("\t")[2] for line in want[:-1]]
    assert names == ["big-new.bin", "B-upper.bin", "sub dir/deeper/a.dat", "sub dir/deeper/z.dat",
                     "sub dir/with space.log", ".hidden/secret.key", ".dotfile", "just-over.bin"]
    assert want[-1] == "total: 8 files, 167241 bytes"


def test_other_thresholds(tree):
    for days, size, nbytes in [(1, "0", 0), (2, "19999", 19999), (30, "1M", 1024**2), (30, "20K", 20 * 1024),
                               (365, "0K", 0)]:
        r = run(tree, days, size)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == expected(tree, days, nbytes), (days, size)


def test_nothing_matches(tree):
    r = run(tree, 1, "1G")
    assert r.returncode == 0
    assert r.stdout == "total: 0 files, 0 bytes\n"


def test_relative_dir_and_trailing_slash(tree):
    r = subprocess.run([SCRIPT, "root/", "7", "10K"], capture_output=True, text=True, cwd=tree.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == expected(tree, 7, 10240)


def test_timestamps_are_utc(tmp_path):
    root = tmp_path / "t"
    p = make(root, "f.bin", 2048, 0)
    t = int(time.time()) - 3 * 3600 - 17
    os.utime(p, (t, t))
    r = subprocess.run([SCRIPT, str(root), "1", "1K"], capture_output=True, text=True,
                       env=dict(os.environ, TZ="America/New_York"))
    stamp = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    assert r.stdout.splitlines()[0] == f"2048\t{stamp}\tf.bin"


@pytest.mark.parametrize("args", [["/nonexistent", "7", "10K"], ["FILE", "7", "10K"], ["DIR", "0", "10K"],
                                  ["DIR", "x", "10K"], ["DIR", "7", "10KB"], ["DIR", "7", "-5"],
                                  ["DIR", "7", "1.5M"], ["DIR", "7"], ["DIR", "7", "1K", "extra"]])
def test_errors(tmp_path, args):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    args = [str(tmp_path / a) if a in ("FILE", "DIR") else a for a in args]
    r = run(*args)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.strip() != ""


def test_example_tree():
    # the image may have been built long ago: make its files recent (q1.csv stays old)
    t = int(time.time()) - 3600
    for rel in ("media files/clip one.bin", ".cache/blob"):
        os.utime(Path("/app/data") / rel, (t, t))
    r = run("/app/data", 30, "100K")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert [line.split("\t")[2] for line in lines[:-1]] == ["media files/clip one.bin", ".cache/blob"]
    assert lines[-1] == "total: 2 files, 420000 bytes"
