"""`ale sandbox`: every subcommand on the real engine, via Typer and the console script."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openale.cli.main import app
from openale.sandbox import Sandbox, SandboxNotFoundError
from tests.cli_scenarios import cp_directory_round_trip, cp_file_round_trip
from tests.conftest import BASE_IMAGE, processes

ALE = str(Path(sys.executable).with_name("ale"))
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def ale_home(tmp_path_factory):
    """A private state directory for this module, so audit logs stay out of ~/.openale."""
    home = tmp_path_factory.mktemp("ale-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ALE_HOME", str(home))
        mp.delenv("ALE_AUDIT_DIR", raising=False)
        mp.setenv("ALE_REAP_INTERVAL_S", "0")
        yield home


@pytest.fixture(scope="module")
def created(engine):
    """Ids of the sandboxes this module made; every one is removed at the end."""
    ids: list[str] = []
    yield ids
    for sandbox_id in ids:
        try:
            Sandbox.attach(sandbox_id).close()
        except SandboxNotFoundError:
            pass


def ale(*args: str, input: str | bytes | None = None):
    return runner.invoke(app, ["sandbox", *args], input=input)


def create(created: list[str], *flags: str) -> str:
    result = ale("create", "--image", BASE_IMAGE, *flags)
    assert result.exit_code == 0, result.output
    sandbox_id = result.stdout.strip()
    created.append(sandbox_id)
    return sandbox_id


def gone(sandbox_id: str) -> bool:
    try:
        Sandbox.attach(sandbox_id)
    except SandboxNotFoundError:
        return True
    return False


def wait_for(predicate, timeout: float = 30):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.2)


def assert_one_error_line(result) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def sandbox_id(created) -> str:
    return create(created)


# -- create / ls ----------------------------------------------------------------------


def test_create_applies_flags_and_ls_lists_it(created, ale_home):
    sandbox_id = create(
        created, "--memory", "256m", "--pids", "64", "-e", "GREETING=hello world", "--ttl", "600"
    )
    listed = json.loads(ale("ls", "--json").stdout)
    info = next(i for i in listed if i["id"] == sandbox_id)
    assert info["status"] == "running" and info["detached"] is True
    assert info["ttl_s"] == 600 and info["spec"]["memory"] == "256m"
    assert info["spec"]["pids"] == 64

    result = ale("exec", sandbox_id, 'echo "$GREETING"')
    assert result.exit_code == 0 and result.stdout == "hello world\n"

    table = ale("ls")
    assert table.exit_code == 0 and sandbox_id in table.stdout and "running" in table.stdout


def test_create_json_and_ttl_zero_means_never(created):
    result = ale("create", "--image", BASE_IMAGE, "--ttl", "0", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    created.append(info["id"])
    assert info["status"] == "running" and info["ttl_s"] is None


def my_sandboxes(ale_home: Path) -> set[str]:
    """Listed sandboxes that this module's state directory knows (others may share the engine)."""
    listed = json.loads(ale("ls", "--all", "--json").stdout)
    return {i["id"] for i in listed if (ale_home / "audit" / f"{i['id']}.jsonl").exists()}


@pytest.mark.parametrize(
    "flags",
    [
        ["--memory", "1k"],
        ["--network", "host"],
        ["--cpus", "0"],
        ["--cpus", "4096"],
        ["--pids", "2"],
        ["--workdir", "relative/dir"],
        ["--env", "1BAD=x"],
        ["--env", "NOT_SET_ANYWHERE_42"],
        ["--user", "bad user"],
    ],
)
def test_invalid_spec_exits_2_and_creates_nothing(flags, ale_home):
    before = my_sandboxes(ale_home)
    result = ale("create", "--image", BASE_IMAGE, *flags)
    assert result.exit_code == 2, result.output
    assert_one_error_line(result)
    assert my_sandboxes(ale_home) == before


def test_missing_image_is_one_line_exit_1():
    result = ale("create", "--image", "openale/no-such-image:never")
    assert result.exit_code == 1
    assert_one_error_line(result)
    assert "ale images bootstrap" in result.stderr


# -- exec -----------------------------------------------------------------------------


def test_exec_propagates_exit_code_and_streams(sandbox_id):
    result = ale("exec", sandbox_id, "echo out; echo err >&2; exit 3")
    assert result.exit_code == 3
    assert result.stdout == "out\n" and result.stderr == "err\n"


def test_exec_several_arguments_are_one_program_and_its_arguments(sandbox_id):
    result = ale("exec", sandbox_id, "--", "printf", "%s|", "a b", "$HOME", ";exit 4")
    assert result.exit_code == 0, result.output
    assert result.stdout == "a b|$HOME|;exit 4|"


def test_exec_cwd_and_env(sandbox_id):
    result = ale("exec", sandbox_id, "--cwd", "/etc", "-e", "X=1", "-e", "Y=a=b", "pwd; echo $X $Y")
    assert result.exit_code == 0 and result.stdout == "/etc\n1 a=b\n"


def test_exec_timeout_exits_124(sandbox_id):
    started = time.monotonic()
    result = ale("exec", sandbox_id, "--timeout", "1", "sleep 30")
    assert result.exit_code == 124
    assert time.monotonic() - started < 15
    assert "timed out" in result.stderr


def test_exec_ctrl_c_kills_the_remote_command(sandbox_id):
    sb = Sandbox.attach(sandbox_id)
    proc = subprocess.Popen(
        [ALE, "sandbox", "exec", sandbox_id, "sleep 31; echo finished"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # A test run started as a background job inherits SIGINT ignored;
        # the CLI under test must see the Ctrl-C a user would send.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for(lambda: "sleep 31" in processes(sb))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and b"finished" not in out
    assert "sleep 31" not in processes(sb)


def test_exec_json_prints_the_command_result(sandbox_id):
    result = ale("exec", sandbox_id, "--json", "echo hi; echo oops >&2; exit 5")
    assert result.exit_code == 5
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == 5 and payload["stdout"] == "hi\n"
    assert payload["stderr"] == "oops\n" and payload["timed_out"] is False


def test_exec_unknown_sandbox_is_one_red_line():
    result = ale("exec", "sb-000000000000", "true")
    assert result.exit_code == 1
    assert_one_error_line(result)
    assert "sb-000000000000" in result.stderr


# -- cp -------------------------------------------------------------------------------


def test_cp_file_both_ways(sandbox_id, tmp_path):
    cp_file_round_trip(ale, sandbox_id, tmp_path)


def test_cp_directory_both_ways(sandbox_id, tmp_path):
    cp_directory_round_trip(ale, sandbox_id, tmp_path)


def test_cp_errors(sandbox_id, tmp_path):
    both_local = ale("cp", str(tmp_path), str(tmp_path / "x"))
    assert both_local.exit_code == 2
    assert_one_error_line(both_local)

    missing = ale("cp", f"{sandbox_id}:/no/such/file", str(tmp_path / "x"))
    assert missing.exit_code == 1
    assert_one_error_line(missing)
    assert not (tmp_path / "x").exists()


# -- snapshot / fork / rm -------------------------------------------------------------


def test_snapshot_and_fork_keep_files(created, engine):
    source = create(created)
    assert ale("exec", source, "echo kept > /workspace/state.txt").exit_code == 0
    snap = ale("snapshot", source)
    assert snap.exit_code == 0, snap.output
    snapshot_id = snap.stdout.strip()
    assert snapshot_id.startswith("snap-")
    try:
        forked = ale("fork", snapshot_id, "-n", "2", "--json")
        assert forked.exit_code == 0, forked.output
        forks = [info["id"] for info in json.loads(forked.stdout)]
        created.extend(forks)
        assert len(set(forks)) == 2 and source not in forks
        for fork_id in forks:
            result = ale("exec", fork_id, "cat /workspace/state.txt")
            assert result.exit_code == 0 and result.stdout == "kept\n"
        assert ale("rm", *forks).exit_code == 0
    finally:
        engine.images.remove(f"openale/snapshot:{snapshot_id}", force=True)


def test_rm_needs_ids_or_all():
    result = ale("rm")
    assert result.exit_code == 2
    assert_one_error_line(result)


def test_rm_reports_unknown_ids_and_removes_the_others(created):
    first, second = create(created), create(created)
    result = ale("rm", first, "sb-doesnotexist", second)
    assert result.exit_code == 1
    assert "sb-doesnotexist" in result.stderr and "Traceback" not in result.output
    assert result.stdout.split() == [first, second]
    assert gone(first) and gone(second)


# -- gc -------------------------------------------------------------------------------

ORPHAN = f"""
import time
from openale.sandbox import Sandbox
sb = Sandbox.create(image={BASE_IMAGE!r}, detach=False)
print(sb.id, flush=True)
time.sleep(600)
"""


def test_gc_removes_sandboxes_whose_owner_was_killed(created):
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True)
    try:
        orphan = proc.stdout.readline().strip()
    finally:
        proc.kill()  # SIGKILL: no atexit handler gets to close the sandbox
        proc.wait()
    assert orphan.startswith("sb-")
    created.append(orphan)

    dry = ale("gc", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    item = next(i for i in json.loads(dry.stdout) if i["id"] == orphan)
    assert "owner process" in item["reason"] and item["removed"] is False
    assert not gone(orphan)

    table = ale("gc")
    assert table.exit_code == 0, table.output
    assert orphan in table.stdout and "removed" in table.stdout
    assert gone(orphan)


def test_gc_leaves_detached_sandboxes_alone(sandbox_id):
    result = ale("gc", "--dry-run", "--json")
    assert result.exit_code == 0
    assert sandbox_id not in {i["id"] for i in json.loads(result.stdout)}


# -- audit ----------------------------------------------------------------------------


def test_audit_shows_the_command_and_its_exit_code(sandbox_id):
    assert ale("exec", sandbox_id, "echo audited; exit 7").exit_code == 7
    result = ale("audit", sandbox_id, "--json")
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    command = [e for e in events if e["kind"] == "command"][-1]
    assert command["detail"]["cmd"] == "echo audited; exit 7" and command["exit_code"] == 7
    assert events[0]["action"] == "pending"

    table = ale("audit", sandbox_id)
    assert table.exit_code == 0 and "exit 7" in table.stdout


def test_audit_unknown_sandbox_exits_1():
    result = ale("audit", "sb-neverexisted")
    assert result.exit_code == 1
    assert_one_error_line(result)


def test_audit_follow_tails_until_the_sandbox_is_deleted(created):
    target = create(created)
    follower = subprocess.Popen(
        [ALE, "sandbox", "audit", target, "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        assert ale("exec", target, "echo followed").exit_code == 0
        assert ale("rm", target).exit_code == 0
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e.get("detail", {}).get("cmd") == "echo followed" for e in events)
    assert (events[-1]["kind"], events[-1]["action"]) == ("lifecycle", "deleted")


# -- shell ----------------------------------------------------------------------------


def test_shell_runs_piped_stdin_as_a_script(sandbox_id):
    script = "cd /tmp\necho hi from $(pwd)\necho to-stderr >&2\nexit 6\n"
    result = ale("shell", sandbox_id, input=script)
    assert result.exit_code == 6, result.output
    assert result.stdout == "hi from /tmp\n" and result.stderr == "to-stderr\n"

    events = [json.loads(line) for line in ale("audit", sandbox_id, "--json").stdout.splitlines()]
    shell = [e for e in events if (e["kind"], e["action"]) == ("session", "shell")][-1]
    assert shell["exit_code"] == 6 and shell["detail"]["input"] == script


def read_until(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while needle not in out:
        if time.monotonic() > end or not select.select([fd], [], [], end - time.monotonic())[0]:
            raise AssertionError(f"{needle!r} not seen in {out!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side of the terminal closed
            chunk = b""
        if not chunk:
            raise AssertionError(f"terminal closed before {needle!r}: {out!r}")
        out += chunk
    return out


def test_shell_on_a_terminal_is_interactive_and_sized(sandbox_id):
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    proc = subprocess.Popen(
        [ALE, "sandbox", "shell", sandbox_id],
        stdin=child,
        stdout=child,
        stderr=child,
        start_new_session=True,
    )
    os.close(child)
    try:
        read_until(main, b"# ")  # root's prompt: the remote bash is up
        os.write(main, b"stty size; echo $((6 * 7))\r")
        out = read_until(main, b"42")
        assert b"33 101" in out
        os.write(main, b"exit 3\r")
        assert proc.wait(timeout=30) == 3
    finally:
        proc.kill()
        os.close(main)


# -- the console script ---------------------------------------------------------------


def test_console_script_sandboxes_outlive_the_cli_process(created):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([ALE, "sandbox", *args], capture_output=True, text=True, timeout=120)

    made = run("create", "--image", BASE_IMAGE)
    assert made.returncode == 0, made.stderr
    sandbox_id = made.stdout.strip()
    created.append(sandbox_id)

    # The process that created it has exited; the sandbox keeps running.
    assert Sandbox.attach(sandbox_id).info().status == "running"
    assert run("exec", sandbox_id, "echo $((40 + 2))").stdout == "42\n"
    failed = run("exec", sandbox_id, "--", "sh", "-c", "echo bad >&2; exit 9")
    assert failed.returncode == 9 and failed.stderr == "bad\n"

    removed = run("rm", sandbox_id)
    assert removed.returncode == 0 and removed.stdout.strip() == sandbox_id
    assert gone(sandbox_id)
