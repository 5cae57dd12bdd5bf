"""`sb.commands`: one-shot processes, exit codes, timeouts, background, truncation."""

import threading

from openale.sandbox import CommandHandle, Sandbox, SandboxSettings, SandboxSpec
from openale.sandbox.streams import TRUNCATION_MARKER
from tests.conftest import BASE_IMAGE, processes


def test_exit_codes_and_streams_are_separate(sandbox):
    r = sandbox.commands.run("echo out; echo err >&2; exit 42")
    assert (r.exit_code, r.stdout, r.stderr) == (42, "out\n", "err\n")
    assert sandbox.commands.run("true").exit_code == 0
    assert sandbox.commands.run("kill -9 $$").exit_code == 137


def test_env_and_cwd(sandbox):
    r = sandbox.commands.run('echo "$GREETING from $(pwd)"', env={"GREETING": "hi"}, cwd="/tmp")
    assert r.stdout == "hi from /tmp\n"


def test_default_workdir_is_the_spec_workdir(sandbox):
    assert sandbox.commands.run("pwd").stdout.strip() == "/workspace"


def test_timeout_kills_the_whole_process_tree(sandbox):
    # A child that detaches into its own session must die too.
    r = sandbox.commands.run("setsid sleep 300 & sleep 300", timeout=1)
    assert r.timed_out and r.interrupted
    assert r.exit_code == 137
    assert not [p for p in processes(sandbox) if p.startswith("sleep 300")]


def test_background_wait_gives_the_real_exit_code(sandbox):
    handle = sandbox.commands.run("sleep 0.5; echo done; exit 7", background=True)
    assert isinstance(handle, CommandHandle)
    result = handle.wait(timeout=30)
    assert handle.done
    assert (result.exit_code, result.stdout) == (7, "done\n")


def test_background_kill(sandbox):
    handle = sandbox.commands.run("sleep 300", background=True, timeout=None)
    threading.Timer(0.3, handle.kill).start()
    assert handle.wait(timeout=30).exit_code == 137


def test_output_over_the_cap_is_truncated_with_a_marker():
    settings = SandboxSettings(max_output_bytes=64 * 1024)
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE), settings=settings) as sb:
        r = sb.commands.run("echo FIRST; head -c 1000000 /dev/zero | tr '\\0' x; echo; echo LAST")
        assert r.exit_code == 0 and r.truncated
        assert r.stdout.startswith("FIRST\n") and r.stdout.endswith("LAST\n")
        assert "output truncated" in r.stdout
        assert len(r.stdout) < 64 * 1024 + len(TRUNCATION_MARKER) + 32

        shell = sb.sessions.create()
        r = shell.run("echo FIRST; head -c 1000000 /dev/zero | tr '\\0' y; echo; echo LAST")
        assert r.exit_code == 0 and r.truncated
        assert r.output.startswith("FIRST\n") and r.output.endswith("LAST\n")
        assert "output truncated" in r.output
        # The session is still in sync after a truncated command.
        assert shell.run("echo next").output == "next\n"
