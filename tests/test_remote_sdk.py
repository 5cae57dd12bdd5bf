"""The remote SDK against a real control plane (uvicorn, in this process) and real Docker.

The same scenario runs on an embedded sandbox and on a remote one; their
observable results must be identical. Retries are checked with real sockets:
a listener that drops connections stands in for a server that is down.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from websockets.protocol import State

from openale.sandbox import (
    AnyAsyncSandbox,
    AnySandbox,
    AsyncSandbox,
    FileTooLargeError,
    ImageNotFoundError,
    InvalidSpecError,
    Sandbox,
    SandboxError,
    SandboxFileError,
    SandboxNotFoundError,
    SandboxNotRunningError,
    SandboxSettings,
    SandboxSpec,
    SessionClosedError,
)
from openale.sandbox.remote import RemoteSandbox, core
from openale.sandbox.remote.aio import AsyncRemoteSandbox
from openale.sandbox.remote.core import ServerAuthError, ServerUnavailableError
from tests.conftest import BASE_IMAGE
from tests.live_server import LiveServer, free_port

SPEC = SandboxSpec(image=BASE_IMAGE, memory="256m")


class DroppingListener:
    """Accepts connections on a port and closes them at once, counting them: a dead server."""

    def __init__(self, port: int):
        self.sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.accepted = 0
        self.first = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()
            self.first.set()

    def close(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join()


@pytest.fixture(scope="module")
def server(engine):
    home = Path(tempfile.mkdtemp(prefix="ale-remote-"))
    live = LiveServer(home).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def token(server) -> str:
    return server.token("alice")


# -- one scenario, two ways --------------------------------------------------------------


def scenario(sb, tmp: Path) -> dict:
    """Everything a user can observe of commands, sessions and files (no ids, no timings)."""
    out: dict = {}
    r = sb.commands.run("echo out; echo err >&2; exit 3")
    out["run"] = (r.exit_code, r.stdout, r.stderr, r.timed_out)
    r = sb.commands.run('pwd; echo "$FOO"', env={"FOO": "bar baz"}, cwd="/tmp")
    out["run_env_cwd"] = r.stdout
    out["run_timeout"] = sb.commands.run("sleep 30", timeout=1).timed_out
    handle = sb.commands.run("sleep 0.3; echo later", background=True)
    out["background"] = handle.wait(timeout=60).stdout
    long = sb.commands.run("sleep 60", background=True)
    long.kill()
    out["killed"] = long.wait(timeout=60).exit_code != 0
    long.kill()  # already over: a no-op

    shell = sb.sessions.create()
    shell.run("cd /tmp && export X=42 && greet() { echo hi-$1; }")
    r = shell.run("pwd; echo $X; greet you; false")
    out["session"] = (r.exit_code, r.output)
    r = shell.run("sleep 30", timeout=1)
    out["session_timeout"] = (r.timed_out, r.interrupted)
    out["session_alive"] = shell.run("echo $X").output
    out["session_exit"] = shell.run("exit 3").exit_code
    with pytest.raises(SessionClosedError):
        shell.run("echo no")
    # Ctrl-C from another thread stops the running command; the shell lives on.
    busy, answer = sb.sessions.create(), []
    runner = threading.Thread(target=lambda: answer.append(busy.run("touch /tmp/m; sleep 30")))
    runner.start()
    while not sb.files.exists("/tmp/m"):
        time.sleep(0.05)
    busy.interrupt()
    runner.join()
    out["session_interrupt"] = (answer[0].interrupted, answer[0].timed_out)
    out["session_after_interrupt"] = busy.run("echo ok").output
    other = sb.sessions.create(cwd="/tmp", env={"WHO": "b"})
    out["session_env"] = other.run("echo ${X:-unset} $WHO $(pwd)").output
    other.close()

    blob = bytes(range(256)) * 4096 + b"\x00\r\n\xff"
    sb.files.write("data/blob.bin", blob, mode=0o600)
    sb.files.write("/workspace/data/note.txt", "héllo\n")
    out["read"] = sb.files.read("/workspace/data/blob.bin") == blob
    out["read_text"] = sb.files.read("data/note.txt")
    out["exists"] = (sb.files.exists("data/blob.bin"), sb.files.exists("data/missing"))
    entries = sb.files.list("data")
    out["list"] = [(e.path, e.name, e.is_dir, e.size, e.mode, e.kind) for e in entries]

    src = tmp / "src"
    (src / "deep" / "er").mkdir(parents=True)
    (src / "a.txt").write_text("a\n")
    (src / "deep" / "er" / "b.bin").write_bytes(bytes(range(256)) * 64)
    out["upload"] = sb.files.upload_dir(src, "up/here")
    out["uploaded"] = sb.commands.run("cd /workspace/up/here && find . | sort").stdout
    down = tmp / "down"
    out["download"] = sb.files.download_dir("up/here", down)
    out["downloaded"] = sorted(
        (p.relative_to(down).as_posix(), p.read_bytes() if p.is_file() else None)
        for p in down.rglob("*")
    )

    errors = []
    for action in (
        lambda: sb.files.read("data/missing"),
        lambda: sb.files.read("data"),
        lambda: sb.files.list("/no/such/dir"),
        lambda: sb.files.write("data", b"x"),
    ):
        with pytest.raises(SandboxError) as e:
            action()
        errors.append(type(e.value).__name__)
    out["errors"] = errors
    return out


@pytest.mark.slow
def test_same_scenario_embedded_and_remote(server, token, tmp_path):
    with Sandbox.create(SPEC) as embedded:
        assert isinstance(embedded, AnySandbox)
        expected = scenario(embedded, tmp_path / "embedded")
    with Sandbox.create(SPEC, server=server.url, token=token) as remote:
        assert isinstance(remote, RemoteSandbox) and isinstance(remote, AnySandbox)
        got = scenario(remote, tmp_path / "remote")
    assert got == expected
    assert expected["session"] == (1, "/tmp\n42\nhi-you\n")
    assert expected["errors"] == ["SandboxFileError"] * 4


@pytest.mark.slow
def test_snapshot_fork_list_attach(server, token):
    with Sandbox.create(SPEC, server=server.url, token=token) as sb:
        sb.files.write("state.txt", "before fork")
        snap = sb.snapshot()
        forks = Sandbox.fork(snap, 2, server=server.url, token=token)
        try:
            assert len({f.id for f in forks}) == 2
            for f in forks:
                assert f.files.read("state.txt") == b"before fork"
                f.files.write("state.txt", f.id)
            assert sb.files.read("state.txt") == b"before fork"  # forks are copies
            listed = {i.id for i in Sandbox.list(server=server.url, token=token)}
            assert {sb.id, *(f.id for f in forks)} <= listed
            again = Sandbox.attach(forks[0].id, server=server.url, token=token)
            assert again.files.read("state.txt") == forks[0].id.encode()
            assert again.info().status == "running"
        finally:
            for f in forks:
                f.close()
            RemoteSandbox.delete_snapshot(snap, server=server.url, token=token)
    with pytest.raises(SandboxNotFoundError):
        Sandbox.attach(sb.id, server=server.url, token=token)


@pytest.mark.slow
def test_restart_keeps_files_and_ends_sessions(server, token):
    with Sandbox.create(SPEC, server=server.url, token=token) as sb:
        shell = sb.sessions.create()
        shell.run("export KEEP=no")
        sb.files.write("kept.txt", "yes")
        sb.restart()
        assert sb.files.read("kept.txt") == b"yes"
        with pytest.raises(SandboxError):
            shell.run("echo $KEEP")
        assert sb.sessions.create().run("echo ${KEEP:-gone}").output == "gone\n"


def test_typed_errors(server, token):
    owner_b = server.token("bob")
    with pytest.raises(ServerAuthError):
        Sandbox.list(server=server.url, token="ale_not-a-token")
    with pytest.raises(ImageNotFoundError):
        Sandbox.create(image="openale/no-such-image:0", server=server.url, token=token)
    with pytest.raises(InvalidSpecError):
        Sandbox.create(SPEC, cpus=512, server=server.url, token=token)
    with pytest.raises(SandboxNotFoundError):
        Sandbox.attach("sb-000000000000", server=server.url, token=token)
    with Sandbox.create(SPEC, server=server.url, token=token) as sb:
        # Another owner's sandbox does not exist for them.
        with pytest.raises(SandboxNotFoundError):
            Sandbox.attach(sb.id, server=server.url, token=owner_b)
        assert sb.id not in {i.id for i in Sandbox.list(server=server.url, token=owner_b)}
    with pytest.raises(SandboxNotRunningError):
        sb.commands.run("true")
    sb.close()  # idempotent


def test_settings_from_environment(server, token, monkeypatch):
    monkeypatch.setenv("ALE_SERVER", server.url)
    monkeypatch.setenv("ALE_TOKEN", token)
    with Sandbox.create(SPEC) as sb:
        assert isinstance(sb, RemoteSandbox)
        assert sb.commands.run("echo via-env").stdout == "via-env\n"
        assert sb.id in {i.id for i in Sandbox.list()}


# -- asyncio ------------------------------------------------------------------------------


@pytest.mark.slow
def test_async_api(server, token, tmp_path):
    async def main():
        async with await AsyncSandbox.create(SPEC, server=server.url, token=token) as sb:
            assert isinstance(sb, AsyncRemoteSandbox) and isinstance(sb, AnyAsyncSandbox)
            results = await asyncio.gather(*(sb.commands.run(f"echo {i}") for i in range(8)))
            assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
            shell = await sb.sessions.create()
            await shell.run("cd /tmp; Y=7")
            assert (await shell.run("echo $(pwd) $Y")).output == "/tmp 7\n"
            handle = await sb.commands.run("sleep 60", background=True)
            assert not handle.done
            await handle.kill()
            assert (await handle.wait(timeout=60)).exit_code != 0
            blob = os.urandom(300_000)
            await sb.files.write("x/blob", blob)
            assert await sb.files.read("x/blob") == blob
            assert await sb.files.exists("x/blob")
            assert [e.name for e in await sb.files.list("x")] == ["blob"]
            (tmp_path / "d").mkdir()
            (tmp_path / "d" / "f").write_bytes(b"\x00\x01")
            assert await sb.files.upload_dir(tmp_path / "d", "/workspace/d") == 2
            assert await sb.files.download_dir("/workspace/d", tmp_path / "back") == 2
            assert (tmp_path / "back" / "f").read_bytes() == b"\x00\x01"
            snap = await sb.snapshot()
            forks = await AsyncSandbox.fork(snap, 2, server=server.url, token=token)
            try:
                reads = await asyncio.gather(*(f.files.read("x/blob") for f in forks))
                assert reads == [blob, blob]
            finally:
                await asyncio.gather(*(f.close() for f in forks))
                RemoteSandbox.delete_snapshot(snap, server=server.url, token=token)
            with pytest.raises(SandboxFileError):
                await sb.files.read("nope")
        with pytest.raises(SandboxNotFoundError):
            await AsyncSandbox.attach(sb.id, server=server.url, token=token)

    asyncio.run(main())


# -- retries ------------------------------------------------------------------------------


def test_idempotent_create_waits_for_a_server_that_starts_late(engine, tmp_path):
    late = LiveServer(tmp_path)
    token = late.token()
    down = DroppingListener(late.port)  # the first attempts reach a dead socket
    created: dict = {}

    def create() -> None:
        try:
            created["sb"] = Sandbox.create(SPEC, server=late.url, token=token)
        except Exception as e:
            created["error"] = e

    client = threading.Thread(target=create)
    client.start()
    down.first.wait()
    down.close()
    late.start()
    client.join()
    try:
        assert "error" not in created, created.get("error")
        sb = created["sb"]
        assert down.accepted >= 1
        assert sb.commands.run("echo up").stdout == "up\n"
        # One key, one sandbox: nothing was created twice by the retries.
        assert [i.id for i in Sandbox.list(server=late.url, token=token)] == [sb.id]
        sb.close()
    finally:
        late.stop()


def test_non_idempotent_calls_are_not_retried(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(core, "RETRIES", 3)  # fewer backoff sleeps, same rule
    port = free_port()
    down = DroppingListener(port)
    try:
        with pytest.raises(ServerUnavailableError):
            Sandbox.fork("snap-000000000000", 1, server=f"http://127.0.0.1:{port}", token="t")
        assert down.accepted == 1
        with pytest.raises(ServerUnavailableError):
            Sandbox.attach("sb-000000000000", server=f"http://127.0.0.1:{port}", token="t")
        assert down.accepted == 1 + 4  # a GET is retried: the first try and 3 more
    finally:
        down.close()


@pytest.mark.slow
def test_reads_survive_a_server_restart(tmp_path):
    live = LiveServer(tmp_path).start()
    token = live.token()
    sb = Sandbox.create(SPEC, server=live.url, token=token)
    try:
        sb.files.write("f", "kept")
        live.stop()
        down = DroppingListener(live.port)
        answer: dict = {}

        def read() -> None:
            try:
                answer["data"] = sb.files.read("f")
            except Exception as e:
                answer["error"] = e

        reader = threading.Thread(target=read)
        reader.start()
        down.first.wait()
        down.close()
        live.start()
        reader.join()
        assert answer == {"data": b"kept"}
        assert sb.info().status == "running"
    finally:
        sb.close()
        live.stop()


# -- settings and the async face ----------------------------------------------------------


def test_upload_dir_honours_the_callers_file_cap(server, token, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "big").write_bytes(b"x" * 5000)
    settings = SandboxSettings(server=server.url, token=token, max_file_bytes=4096)
    with Sandbox.create(SPEC, settings=settings) as sb:
        with pytest.raises(FileTooLargeError):
            sb.files.upload_dir(tmp_path / "d", "/workspace/d")
        assert not sb.files.exists("/workspace/d/big")

    async def main():
        async with await AsyncSandbox.create(SPEC, settings=settings) as sb:
            with pytest.raises(FileTooLargeError):
                await sb.files.upload_dir(tmp_path / "d", "/workspace/d")

    asyncio.run(main())


def test_async_restart_ends_sessions_and_closes_their_sockets(server, token):
    async def main():
        async with await AsyncSandbox.create(SPEC, server=server.url, token=token) as sb:
            shell = await sb.sessions.create()
            assert (await shell.run("echo up")).output == "up\n"
            socket = shell._socket._ws
            assert socket is not None and socket.state is State.OPEN  # ran over its WebSocket
            await sb.restart()
            assert shell.closed
            assert socket.state is State.CLOSED

    asyncio.run(main())


def test_async_delete_snapshot(server, token):
    async def main():
        async with await AsyncSandbox.create(SPEC, server=server.url, token=token) as sb:
            snap = await sb.snapshot()
        await AsyncRemoteSandbox.delete_snapshot(snap.id, server=server.url, token=token)
        with pytest.raises(SandboxNotFoundError):
            await AsyncSandbox.fork(snap, server=server.url, token=token)

    asyncio.run(main())
