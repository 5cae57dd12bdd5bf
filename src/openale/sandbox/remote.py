"""``RemoteSandbox``: the embedded ``Sandbox`` API, served by a control plane (``ale serve``).

    with Sandbox.create(spec, server="http://ale:8000", token=...) as sb:
        sb.commands.run("echo hi").stdout
        sb.sessions.create().run("cd /tmp && pwd")
        sb.files.write("notes.txt", b"hello")

Same methods, results and typed errors as the embedded sandbox; each call is
one HTTP request built by ``remote_calls`` and sent by ``remote_http`` (shared
with the asyncio face in ``remote_aio``), except session commands, which go over
one WebSocket per session (``remote_ws``) with HTTP as the fallback.
Idempotent requests (reads, deletes, file writes, creates, which carry an
``Idempotency-Key``) are retried with exponential backoff when the server
cannot be reached; the others never are, so a command never runs twice.
"""

from __future__ import annotations

import atexit
import tempfile
import threading
import weakref
from pathlib import Path

from openale.sandbox import remote_calls as calls
from openale.sandbox.errors import (
    SandboxError,
    SandboxNotFoundError,
    SandboxNotRunningError,
    SessionClosedError,
)
from openale.sandbox.files import FileEntry
from openale.sandbox.remote_core import (
    CHUNK,
    Call,
    ServerError,
    SseParser,
    abs_path,
    pack_dir,
    replay,
    resolve_target,
    stream_error,
    unpack_dir,
)
from openale.sandbox.remote_http import RemoteHttp
from openale.sandbox.remote_ws import SessionSocket
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot
from openale.server.schemas import SSE_ERROR, SSE_EXIT, SSE_START, ExistsResponse, SessionCreated

_live: weakref.WeakSet[RemoteSandbox] = weakref.WeakSet()


@atexit.register
def _close_owned() -> None:
    for sb in list(_live):
        if not sb.detached:
            try:
                sb.close()
            except Exception:  # the server may already be gone at interpreter exit
                pass


# -- commands ---------------------------------------------------------------------------


class RemoteCommandHandle:
    """A command running on the server; ``wait()`` returns its ``CommandResult``."""

    def __init__(self, sandbox: RemoteSandbox, call: Call, cmd: str):
        self._sb = sandbox
        self.cmd = cmd
        self.command_id: str | None = None
        self._call = call
        self._result: CommandResult | None = None
        self._error: SandboxError | None = None
        self._started = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="ale-remote-cmd", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            with self._sb._http.stream(self._call) as response:
                parser = SseParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        self._on_event(*event)
            if self._result is None and self._error is None:
                self._error = ServerError("the command stream ended without an exit event")
        except SandboxError as e:
            self._error = e
        finally:
            self._started.set()
            self._done.set()

    def _on_event(self, name: str, data) -> None:
        if name == SSE_START:
            self.command_id = data["command_id"]
            self._started.set()
        elif name == SSE_EXIT:
            self._result = CommandResult.model_validate(data)
        elif name == SSE_ERROR:
            self._error = stream_error(data)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> CommandResult:
        """Block until the command ends (or ``timeout`` seconds; then ``TimeoutError``)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"command still running after {timeout}s: {self.cmd!r}")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def kill(self) -> None:
        """SIGKILL the command and everything it started."""
        self._started.wait()
        if self.command_id is not None and not self.done:
            try:
                self._sb._http.send(calls.interrupt_command(self._sb.id, self.command_id))
            except SandboxNotFoundError:
                pass  # it ended meanwhile: nothing left to kill, as embedded


class RemoteCommands:
    """``sb.commands.run(...)``: each call is a fresh ``sh -c`` process on the server."""

    def __init__(self, sandbox: RemoteSandbox):
        self._sb = sandbox

    def run(
        self,
        cmd: str,
        *,
        timeout: float | None = 600.0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        background: bool = False,
    ) -> CommandResult | RemoteCommandHandle:
        """Run ``cmd`` with ``sh -c``. ``background=True`` returns a handle once it started."""
        self._sb.ensure_running()
        call = calls.run(self._sb.id, cmd, timeout, env, cwd, user, stream=background)
        if background:
            handle = RemoteCommandHandle(self._sb, call, cmd)
            handle._started.wait()
            if handle.command_id is None and handle._error is not None:
                raise handle._error  # it never started: fail here, as the embedded API does
            return handle
        return CommandResult.model_validate(self._sb._http.json(call))


# -- sessions ---------------------------------------------------------------------------


class RemoteSession:
    """A persistent shell on the server. ``run`` returns ``CommandResult`` with ``output``."""

    def __init__(self, sandbox: RemoteSandbox, session_id: str):
        self._sb = sandbox
        self.id = session_id
        self.closed = False
        self._socket = SessionSocket(sandbox._http.target, sandbox.id, session_id)

    def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        """Run ``cmd`` in the shell: over the session's WebSocket, else one HTTP request."""
        call = calls.session_run(self._sb.id, self.id, cmd, timeout)
        try:
            result = self._socket.run(call.json, call.read_timeout)
            if result is None:
                result = self._run_http(call)
            return result
        except SessionClosedError:
            self.closed = True
            raise

    def _run_http(self, call: Call) -> CommandResult:
        return CommandResult.model_validate(self._sb._http.json(call))

    def interrupt(self) -> None:
        self._sb._http.send(calls.session_interrupt(self._sb.id, self.id))

    def close(self) -> None:
        if self.closed:
            self._socket.close()
            return
        self.closed = True
        self._socket.close()
        try:
            self._sb._http.send(calls.session_delete(self._sb.id, self.id))
        except (SessionClosedError, SandboxNotRunningError):
            pass  # already gone with its shell or its sandbox
        except SandboxError as e:
            if e.status_code != 404:
                raise

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RemoteSessions:
    """``sb.sessions.create()``: persistent bash shells in the remote sandbox."""

    def __init__(self, sandbox: RemoteSandbox):
        self._sb = sandbox
        self._open: list[RemoteSession] = []

    def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> RemoteSession:
        self._sb.ensure_running()
        call = calls.session_create(self._sb.id, cwd, env, user)
        created = SessionCreated.model_validate(self._sb._http.json(call))
        session = RemoteSession(self._sb, created.session_id)
        self._open.append(session)
        return session

    def close_all(self) -> None:
        for s in self._open:
            s.close()
        self._open.clear()


# -- files ------------------------------------------------------------------------------


class RemoteFiles:
    """``sb.files``: binary-safe transfers, streamed through the server."""

    def __init__(self, sandbox: RemoteSandbox):
        self._sb = sandbox

    def _abs(self, path: str) -> str:
        return abs_path(self._sb.spec.workdir, path)

    def write(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        """Create or replace ``path`` (parents are created) with ``data``."""
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._sb._http.send(calls.file_write(self._sb.id, self._abs(path), payload, mode))

    def read(self, path: str) -> bytes:
        """The bytes of ``path`` (symlinks are followed)."""
        return self._sb._http.send(calls.file_read(self._sb.id, self._abs(path))).content

    def exists(self, path: str) -> bool:
        answer = self._sb._http.json(calls.file_exists(self._sb.id, self._abs(path)))
        return ExistsResponse.model_validate(answer).exists

    def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]:
        """Entries under ``path`` down to ``depth`` levels, sorted by path."""
        rows = self._sb._http.json(calls.file_list(self._sb.id, self._abs(path), depth))
        return [FileEntry.model_validate(row) for row in rows]

    def upload_dir(self, local: str | Path, remote: str) -> int:
        """Copy the contents of a local directory into ``remote``; returns bytes sent."""
        spool, total = pack_dir(local, SandboxSettings().max_file_bytes)
        with spool:
            self._sb._http.send(calls.archive_put(self._sb.id, self._abs(remote), replay(spool)))
        return total

    def download_dir(self, remote: str, local: str | Path) -> int:
        """Copy the contents of ``remote`` into a local directory; returns bytes received."""
        remote = self._abs(remote)
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            with self._sb._http.stream(calls.archive_get(self._sb.id, remote)) as response:
                for chunk in response.iter_bytes(CHUNK):
                    spool.write(chunk)
            return unpack_dir(spool, local)


# -- the sandbox ------------------------------------------------------------------------


def _http(server: str | None, token: str | None, settings: SandboxSettings | None) -> RemoteHttp:
    target = resolve_target(server, token, settings)
    if target is None:
        raise ValueError("no server: pass server= or set ALE_SERVER")
    return RemoteHttp(target)


class RemoteSandbox:
    """A sandbox on a control plane. Build one with ``create``, ``attach`` or ``fork``."""

    def __init__(self, http: RemoteHttp, info: SandboxInfo, *, detached: bool):
        self._http = http
        self.id = info.id
        self.spec = info.spec
        self.server = http.target.server
        self.detached = detached
        self.closed = False
        self.commands = RemoteCommands(self)
        self.sessions = RemoteSessions(self)
        self.files = RemoteFiles(self)
        self._lock = threading.Lock()
        _live.add(self)

    @classmethod
    def create(
        cls,
        spec: SandboxSpec | dict | None = None,
        *,
        detach: bool = False,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
        envhub: str | None = None,
        idempotency_key: str | None = None,
        **fields,
    ) -> RemoteSandbox:
        """Start a sandbox on the server; ``envhub="name@version"`` uses an EnvHub image."""
        http = _http(server, token, settings)
        call = calls.create(spec, fields, envhub, idempotency_key)
        return cls(http, SandboxInfo.model_validate(http.json(call)), detached=detach)

    @classmethod
    def attach(
        cls,
        sandbox_id: str,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
    ) -> RemoteSandbox:
        """A handle on an existing sandbox of this token's owner."""
        http = _http(server, token, settings)
        info = SandboxInfo.model_validate(http.json(calls.get(sandbox_id)))
        return cls(http, info, detached=True)

    @classmethod
    def list(
        cls,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
        all_owners: bool = False,
    ) -> list[SandboxInfo]:
        http = _http(server, token, settings)
        rows = http.json(calls.list_all(all_owners))
        return [SandboxInfo.model_validate(r) for r in rows]

    @classmethod
    def fork(
        cls,
        snapshot: Snapshot | str,
        n: int = 1,
        *,
        detach: bool = False,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
        **overrides,
    ) -> list[RemoteSandbox]:
        """Start ``n`` sandboxes from a snapshot on the server."""
        if n < 1:
            raise ValueError("n must be at least 1")
        http = _http(server, token, settings)
        snap_id = snapshot.id if isinstance(snapshot, Snapshot) else snapshot
        call = calls.fork(snap_id, n, overrides)
        return [cls(http, SandboxInfo.model_validate(i), detached=detach) for i in http.json(call)]

    @classmethod
    def delete_snapshot(
        cls,
        snapshot: Snapshot | str,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
    ) -> None:
        http = _http(server, token, settings)
        snap_id = snapshot.id if isinstance(snapshot, Snapshot) else snapshot
        http.send(calls.delete_snapshot(snap_id))

    # -- lifecycle --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Commit the filesystem to an image on the server."""
        self.ensure_running()
        return Snapshot.model_validate(self._http.json(calls.snapshot(self.id)))

    def info(self) -> SandboxInfo:
        return SandboxInfo.model_validate(self._http.json(calls.get(self.id)))

    def restart(self) -> None:
        """Kill every process in the sandbox (sessions included) and start it again."""
        self.ensure_running()
        self._http.send(calls.restart(self.id))
        for s in self.sessions._open:
            s.closed = True  # their shells died with the restart
            s._socket.close()
        self.sessions._open.clear()

    def ensure_running(self) -> None:
        if self.closed:
            raise SandboxNotRunningError(f"sandbox {self.id} is closed")

    def close(self) -> None:
        """Stop and delete the sandbox. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        try:
            self._http.send(calls.delete(self.id))
        except SandboxError as e:
            if e.status_code != 404:  # already deleted (reaped, or a retried DELETE)
                raise
        _live.discard(self)

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteSandbox({self.id!r}, image={self.spec.image!r}, server={self.server!r})"
