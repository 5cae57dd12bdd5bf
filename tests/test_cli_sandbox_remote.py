"""`ale sandbox` with ALE_SERVER set: the same commands against a real control plane.

The CLI only uses the sandbox API (``AnySandbox``), so copying and shells work
on a remote sandbox as they do embedded, with no branch on the concrete class.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openale.cli.main import app
from tests.conftest import BASE_IMAGE
from tests.live_server import LiveServer

runner = CliRunner()


@pytest.fixture(scope="module")
def server(engine):
    live = LiveServer(Path(tempfile.mkdtemp(prefix="ale-cli-remote-"))).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def remote_env(server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALE_SERVER", server.url)
        mp.setenv("ALE_TOKEN", server.token("carol"))
        yield


def ale(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, ["sandbox", *args], input=input)


@pytest.fixture(scope="module")
def sandbox_id(remote_env):
    made = ale("create", "--image", BASE_IMAGE)
    assert made.exit_code == 0, made.output
    sandbox_id = made.stdout.strip()
    yield sandbox_id
    assert ale("rm", sandbox_id).exit_code == 0


def test_the_sandbox_is_on_the_server(sandbox_id, server):
    listed = ale("ls")
    assert listed.exit_code == 0 and sandbox_id in listed.stdout
    result = ale("exec", sandbox_id, "echo $((6 * 7))")
    assert result.exit_code == 0 and result.stdout == "42\n"


def test_cp_file_both_ways(sandbox_id, tmp_path):
    payload = bytes(range(256)) * 64
    src = tmp_path / "blob.bin"
    src.write_bytes(payload)
    src.chmod(0o750)

    up = ale("cp", str(src), f"{sandbox_id}:/tmp/up/blob.bin")
    assert up.exit_code == 0, up.output
    check = ale("exec", sandbox_id, "stat -c '%s %a' /tmp/up/blob.bin")
    assert check.stdout.strip() == f"{len(payload)} 750"

    # An existing directory as destination receives the file under its own name.
    assert ale("cp", str(src), f"{sandbox_id}:/tmp").exit_code == 0
    assert ale("exec", sandbox_id, "cmp /tmp/blob.bin /tmp/up/blob.bin").exit_code == 0

    down = tmp_path / "down.bin"
    result = ale("cp", f"{sandbox_id}:/tmp/up/blob.bin", str(down))
    assert result.exit_code == 0, result.output
    assert down.read_bytes() == payload
    assert down.stat().st_mode & 0o777 == 0o750

    # A symlink is followed; '-' is stdin and stdout.
    assert ale("exec", sandbox_id, "ln -s /tmp/up/blob.bin /tmp/link").exit_code == 0
    into = tmp_path / "into"
    into.mkdir()
    assert ale("cp", f"{sandbox_id}:/tmp/link", str(into)).exit_code == 0
    assert (into / "blob.bin").read_bytes() == payload
    assert ale("cp", "-", f"{sandbox_id}:notes.txt", input="from stdin\n").exit_code == 0
    out = ale("cp", f"{sandbox_id}:/workspace/notes.txt", "-")
    assert out.exit_code == 0 and out.stdout == "from stdin\n"

    missing = ale("cp", f"{sandbox_id}:/no/such/file", str(tmp_path / "x"))
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_cp_directory_both_ways(sandbox_id, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "a.txt").write_text("alpha\n")
    (tree / "sub" / "deeper" / "b.bin").write_bytes(b"\x00\xff" * 1000)

    assert ale("cp", str(tree), f"{sandbox_id}:/srv/copy").exit_code == 0
    assert ale("cp", str(tree), f"{sandbox_id}:/srv/copy").exit_code == 0  # lands inside
    listing = ale("exec", sandbox_id, "cd /srv/copy && find . | sort").stdout.split()
    assert {"./a.txt", "./sub/deeper/b.bin", "./tree/a.txt"} <= set(listing)

    fresh = tmp_path / "fresh"
    assert ale("cp", f"{sandbox_id}:/srv/copy/tree", str(fresh)).exit_code == 0
    assert (fresh / "a.txt").read_text() == "alpha\n"
    existing = tmp_path / "existing"
    existing.mkdir()
    assert ale("cp", f"{sandbox_id}:/srv/copy/sub", str(existing)).exit_code == 0
    assert (existing / "sub" / "deeper" / "b.bin").read_bytes() == b"\x00\xff" * 1000


def test_shell_runs_piped_stdin_as_a_script(sandbox_id):
    script = "cd /tmp\necho hi from $(pwd)\necho to-stderr >&2\nexit 6\n"
    result = ale("shell", sandbox_id, input=script)
    assert result.exit_code == 6, result.output
    assert result.stdout == "hi from /tmp\n" and result.stderr == "to-stderr\n"
    # The script's file is gone once it ran.
    leftovers = ale("exec", sandbox_id, "ls -a /tmp | grep -c ale-shell || true")
    assert leftovers.stdout.strip() == "0"
