"""`sb.files`: binary-safe transfers of files and directories."""

import hashlib
import os

import pytest

from openale.sandbox import (
    FileTooLargeError,
    Sandbox,
    SandboxFileError,
    SandboxSettings,
    SandboxSpec,
)
from tests.conftest import BASE_IMAGE


def test_ten_megabytes_of_random_bytes_round_trip(sandbox):
    data = os.urandom(10 * 1024 * 1024)
    sandbox.files.write("blob.bin", data)
    inside = sandbox.commands.run("sha256sum /workspace/blob.bin").stdout.split()[0]
    assert inside == hashlib.sha256(data).hexdigest()
    assert sandbox.files.read("/workspace/blob.bin") == data


def test_text_parents_modes_and_overwrite(sandbox):
    sandbox.files.write("deep/er/note.txt", "héllo\n")
    assert sandbox.files.read("deep/er/note.txt") == "héllo\n".encode()
    sandbox.files.write("deep/er/note.txt", b"")
    assert sandbox.files.read("deep/er/note.txt") == b""
    sandbox.files.write("run.sh", "#!/bin/sh\necho ran\n", mode=0o755)
    assert sandbox.commands.run("./run.sh").stdout == "ran\n"
    assert sandbox.files.exists("deep/er") and not sandbox.files.exists("missing")


def test_symlinks_are_followed_on_read(sandbox):
    sandbox.files.write("target.txt", "pointed")
    sandbox.commands.run("ln -s target.txt link.txt && ln -s /workspace/link.txt abs.txt")
    assert sandbox.files.read("link.txt") == b"pointed"
    assert sandbox.files.read("abs.txt") == b"pointed"


def test_errors_are_typed(sandbox):
    with pytest.raises(SandboxFileError, match="no such file"):
        sandbox.files.read("nope.txt")
    with pytest.raises(SandboxFileError, match="directory"):
        sandbox.files.read("/etc")
    sandbox.files.write("plain", "x")
    with pytest.raises(SandboxFileError, match="not a directory"):
        sandbox.files.write("plain/child.txt", "x")


def test_list(sandbox):
    sandbox.files.write("ls/a.txt", "aa")
    sandbox.files.write("ls/sub/b.txt", "b")
    top = sandbox.files.list("ls")
    assert [(e.name, e.is_dir) for e in top] == [("a.txt", False), ("sub", True)]
    assert top[0].size == 2
    deep = sandbox.files.list("ls", depth=2)
    assert "/workspace/ls/sub/b.txt" in [e.path for e in deep]


def test_directory_upload_and_download(sandbox, tmp_path):
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    files = {
        "top.txt": b"top\n",
        "nested/bin.dat": os.urandom(300_000),
        "nested/deeper/x.py": b"print('x')\n",
    }
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    (src / "tool.sh").write_bytes(b"#!/bin/sh\necho tool\n")
    (src / "tool.sh").chmod(0o755)
    sent = sandbox.files.upload_dir(src, "/workspace/project/in")
    assert sent == sum(len(d) for d in files.values()) + len(b"#!/bin/sh\necho tool\n")
    assert sandbox.commands.run("cd project/in && ./tool.sh").stdout == "tool\n"
    assert sandbox.files.read("project/in/nested/bin.dat") == files["nested/bin.dat"]

    sandbox.commands.run("cd project/in && echo made-inside > nested/new.txt")
    dst = tmp_path / "dst"
    sandbox.files.download_dir("/workspace/project/in", dst)
    for rel, data in files.items():
        assert (dst / rel).read_bytes() == data
    assert (dst / "nested" / "new.txt").read_text() == "made-inside\n"
    assert (dst / "empty").is_dir()
    assert os.access(dst / "tool.sh", os.X_OK)


def test_transfers_over_the_cap_are_refused_before_sending(tmp_path):
    settings = SandboxSettings(max_file_bytes=1024)
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE), settings=settings) as sb:
        with pytest.raises(FileTooLargeError, match="cap"):
            sb.files.write("big", b"x" * 2048)
        assert not sb.files.exists("big")
        sb.commands.run("head -c 4096 /dev/zero > big")
        with pytest.raises(FileTooLargeError):
            sb.files.read("big")
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "f").write_bytes(b"y" * 4096)
        with pytest.raises(FileTooLargeError):
            sb.files.upload_dir(tmp_path / "d", "d")


def test_files_belong_to_the_sandbox_user(engine):
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE, user="nobody", workdir="/tmp")) as sb:
        sb.files.write("/tmp/mine.txt", "x")
        assert sb.commands.run("stat -c %U /tmp/mine.txt").stdout.strip() == "nobody"
        assert sb.commands.run("echo more >> /tmp/mine.txt").exit_code == 0


def test_overwriting_keeps_permissions_and_never_replaces_a_directory(sandbox):
    sandbox.files.write("tool.sh", "#!/bin/sh\necho v1\n", mode=0o750)
    sandbox.files.write("tool.sh", "#!/bin/sh\necho v2\n")
    assert sandbox.commands.run("./tool.sh && stat -c %a tool.sh").stdout == "v2\n750\n"
    sandbox.files.write("dir/inner.txt", "keep")
    with pytest.raises(SandboxFileError, match="is a directory"):
        sandbox.files.write("dir", "x")
    assert sandbox.files.read("dir/inner.txt") == b"keep"
