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
from tests.cli_scenarios import cp_directory_round_trip, cp_file_round_trip
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
    cp_file_round_trip(ale, sandbox_id, tmp_path)


def test_cp_directory_both_ways(sandbox_id, tmp_path):
    cp_directory_round_trip(ale, sandbox_id, tmp_path)


def test_shell_runs_piped_stdin_as_a_script(sandbox_id):
    script = "cd /tmp\necho hi from $(pwd)\necho to-stderr >&2\nexit 6\n"
    result = ale("shell", sandbox_id, input=script)
    assert result.exit_code == 6, result.output
    assert result.stdout == "hi from /tmp\n" and result.stderr == "to-stderr\n"
    # The script's file is gone once it ran.
    leftovers = ale("exec", sandbox_id, "ls -a /tmp | grep -c ale-shell || true")
    assert leftovers.stdout.strip() == "0"
