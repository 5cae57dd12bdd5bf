import fnmatch
import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

PROJECT = Path("/app/project")
DIST = Path("/app/dist")
ARCHIVE = DIST / "myapp-1.4.0.tar.gz"
PREFIX = "myapp-1.4.0"
EPOCH = 1704067200  # 2024-01-01T00:00:00Z
BAIT = [".git/HEAD", ".env", "config/.env", "logs/access.log", "node_modules/left-pad/index.js",
        "src/myapp/__pycache__/main.cpython-311.pyc", "src/myapp/old_main.pyc"]


def excluded(name, is_dir):
    if name in (".git", "__pycache__", "node_modules"):
        return True
    return not is_dir and (name == ".env" or fnmatch.fnmatchcase(name, "*.pyc") or fnmatch.fnmatchcase(name, "*.log"))


def expected_names():
    names = [PREFIX + "/"]

    def walk(d, rel):
        for entry in sorted(os.scandir(d), key=lambda e: e.name.encode()):
            is_dir = entry.is_dir(follow_symlinks=False)
            if excluded(entry.name, is_dir):
                continue
            r = f"{rel}/{entry.name}"
            names.append(r + ("/" if is_dir else ""))
            if is_dir:
                walk(entry.path, r)

    walk(PROJECT, PREFIX)
    return names


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The archive built independently with GNU tar from a staged copy of the tree."""
    stage = tmp_path_factory.mktemp("stage")
    shutil.copytree(PROJECT, stage / PREFIX, symlinks=True, copy_function=shutil.copy2)
    shutil.copystat(PROJECT, stage / PREFIX)
    cmd = ["tar", "--sort=name", "--format=gnu", f"--mtime=@{EPOCH}", "--owner=0", "--group=0",
           "--numeric-owner", "--exclude=.git", "--exclude=__pycache__", "--exclude=node_modules",
           "--exclude=.env", "--exclude=*.pyc", "--exclude=*.log", "-C", str(stage), "-cf", "-", PREFIX]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    gz = subprocess.run(["gzip", "-9n"], input=raw, check=True, capture_output=True).stdout
    return raw, gz


def test_project_untouched():
    for rel in BAIT:
        assert (PROJECT / rel).is_file(), rel
    assert (PROJECT / "docs/README.md").is_symlink()


def test_member_list():
    with tarfile.open(ARCHIVE, "r:gz") as tar:
        names = [m.name + ("/" if m.isdir() else "") for m in tar.getmembers()]
        members = tar.getmembers()
    assert names == expected_names()
    for m in members:
        assert m.mtime == EPOCH and m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == ""
        if m.name.endswith("docs/README.md"):
            assert m.issym() and m.linkname == "../README.md"


def test_tar_stream_identical(reference):
    raw, _ = reference
    got = gzip.decompress(ARCHIVE.read_bytes())
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(raw).hexdigest()


def test_gzip_bytes_identical(reference):
    _, gz = reference
    data = ARCHIVE.read_bytes()
    assert data[4:8] == b"\0\0\0\0" and not data[3] & 0x08  # no timestamp, no file name
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(gz).hexdigest()


def test_checksum_file():
    digest = hashlib.sha256(ARCHIVE.read_bytes()).hexdigest()
    assert (DIST / "myapp-1.4.0.tar.gz.sha256").read_text() == f"{digest}  myapp-1.4.0.tar.gz\n"
