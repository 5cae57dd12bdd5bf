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


class Collector:
    """An ``on_output`` callback that keeps every chunk, per stream, in arrival order."""

    def __init__(self, gate: threading.Event | None = None):
        self.chunks: list[tuple[str, bytes]] = []
        self.gate = gate
        self.threads: set[int] = set()

    def __call__(self, stream: str, data: bytes) -> None:
        if self.gate is not None:
            self.gate.wait()  # a consumer that does not keep up
        self.threads.add(threading.get_ident())
        self.chunks.append((stream, data))

    def text(self, stream: str) -> str:
        return b"".join(d for s, d in self.chunks if s == stream).decode()


def test_on_output_gets_each_stream_in_order_and_apart(sandbox):
    seen = Collector()
    cmd = "for i in $(seq 1 3000); do echo out$i; echo err$i >&2; done"
    handle = sandbox.commands.run(cmd, background=True, on_output=seen)
    result = handle.wait(timeout=120)
    assert {s for s, _ in seen.chunks} == {"stdout", "stderr"}
    assert seen.text("stdout") == "".join(f"out{i}\n" for i in range(1, 3001)) == result.stdout
    assert seen.text("stderr") == "".join(f"err{i}\n" for i in range(1, 3001)) == result.stderr
    assert len(seen.threads) == 1  # one reader thread: calls never overlap


def test_on_output_loses_nothing_behind_a_slow_consumer(sandbox):
    # The callback is stuck on its first chunk while the command prints everything
    # and says so; then it catches up and must see all of it, in order.
    gate = threading.Event()
    seen = Collector(gate)
    cmd = "echo first; seq 1 2000; echo oops >&2; touch /tmp/printed; echo last"
    handle = sandbox.commands.run(cmd, background=True, on_output=seen)
    printed = (sandbox.commands.run("test -e /tmp/printed").exit_code == 0 for _ in range(600))
    assert any(printed), "the command never got to print everything"
    gate.set()
    result = handle.wait(timeout=60)
    expected = "first\n" + "".join(f"{i}\n" for i in range(1, 2001)) + "last\n"
    assert seen.text("stdout") == expected == result.stdout
    assert seen.text("stderr") == "oops\n"


def test_on_output_sees_all_bytes_past_the_cap_and_in_the_foreground():
    settings = SandboxSettings(max_output_bytes=64 * 1024)
    with Sandbox.create(SandboxSpec(image=BASE_IMAGE), settings=settings) as sb:
        seen = Collector()
        r = sb.commands.run(
            "echo FIRST; head -c 1000000 /dev/zero | tr '\\0' x; echo", on_output=seen
        )
        assert r.truncated and len(r.stdout) < 70 * 1024
        assert seen.text("stdout") == "FIRST\n" + "x" * 1000000 + "\n"
        assert seen.threads == {threading.get_ident()}  # wait() read it on this thread


def test_a_failing_on_output_is_dropped_and_the_result_still_comes(sandbox):
    calls = []

    def broken(stream: str, data: bytes) -> None:
        calls.append(data)
        raise ValueError("consumer bug")

    r = sandbox.commands.run("echo a; sleep 0.2; echo b; exit 3", on_output=broken)
    assert (r.exit_code, r.stdout) == (3, "a\nb\n")
    assert len(calls) == 1
    assert "on_output raised ValueError: consumer bug" in r.error
