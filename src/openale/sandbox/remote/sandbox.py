"""``RemoteSandbox``: the embedded ``Sandbox`` API, served by a control plane (``ale serve``).

    with Sandbox.create(spec, server="http://ale:8000", token=...) as sb:
        sb.commands.run("echo hi").stdout
        sb.sessions.create().run("cd /tmp && pwd")
        sb.files.write("notes.txt", b"hello")

Same methods, results and typed errors as the embedded sandbox. Each method
drives one I/O-free operation of ``ops`` (shared with the asyncio face in
``aio``) over ``http``, except session commands, which go over one WebSocket
per session (``ws``) with HTTP as the fallback. Idempotent requests (reads,
deletes, file writes, creates, which carry an ``Idempotency-Key``) are retried
with exponential backoff when the server cannot be reached; the others never
are, so a command never runs twice.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from openale.sandbox.errors import SandboxError, SessionClosedError
from openale.sandbox.files import FileEntry
from openale.sandbox.owned import disown, own
from openale.sandbox.remote import calls, ops
from openale.sandbox.remote.core import Call, CommandEvents, RemoteState, require_target
from openale.sandbox.remote.http import RemoteHttp
from openale.sandbox.remote.shell import attach_shell
from openale.sandbox.remote.tar import CHUNK, pack_dir, rereadable, unpack_dir
from openale.sandbox.remote.ws import SessionSocket
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot

# -- commands ---------------------------------------------------------------------------


class RemoteCommandHandle:
    """A command running on the server; ``wait()`` returns its ``CommandResult``."""

    def __init__(self, sandbox: RemoteSandbox, call: Call, cmd: str):
        self._sb = sandbox
        self.cmd = cmd
        self._call = call
        self._events = CommandEvents()
        self._started = threading.Event()
        self._done = threading.Event()
        threading.Thread(target=self._pump, name="ale-remote-cmd", daemon=True).start()
        self._started.wait()

    @property
    def command_id(self) -> str | None:
        return self._events.command_id

    def _pump(self) -> None:
        try:
            with self._sb._http.stream(self._call) as response:
                for line in response.iter_lines():
                    if self._events.feed(line):
                        self._started.set()
            self._events.end()
        except SandboxError as e:
            self._events.end(e)
        finally:
            self._started.set()
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> CommandResult:
        """Block until the command ends (or ``timeout`` seconds; then ``TimeoutError``)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"command still running after {timeout}s: {self.cmd!r}")
        return self._events.outcome()

    def kill(self) -> None:
        """SIGKILL the command and everything it started."""
        if self.command_id is not None and not self.done:
            self._sb._http.run(ops.interrupt_command(self._sb.id, self.command_id))


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
        options = {"timeout": timeout, "env": env, "cwd": cwd, "user": user}
        if not background:
            return self._sb._http.run(ops.run(self._sb.id, cmd, **options))
        call = calls.run(self._sb.id, cmd, **options, stream=True)
        handle = RemoteCommandHandle(self._sb, call, cmd)
        if error := handle._events.failed_to_start:
            raise error  # it never started: fail here, as the embedded API does
        return handle


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
            return result if result is not None else self._run_http(call)
        except SessionClosedError:
            self.closed = True
            raise

    def _run_http(self, call: Call) -> CommandResult:
        return self._sb._http.run(ops.session_run(call))

    def interrupt(self) -> None:
        self._sb._http.run(ops.session_interrupt(self._sb.id, self.id))

    def ended(self) -> None:
        """The shell is gone (its sandbox restarted): release the socket, send nothing."""
        self.closed = True
        self._socket.close()

    def close(self) -> None:
        was_closed = self.closed
        self.ended()
        if not was_closed:
            self._sb._http.run(ops.session_delete(self._sb.id, self.id))

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
        session_id = self._sb._http.run(ops.session_create(self._sb.id, cwd, env, user))
        session = RemoteSession(self._sb, session_id)
        self._open.append(session)
        return session

    def ended(self) -> None:
        """Every shell died with a restart of the sandbox."""
        for s in self._open:
            s.ended()
        self._open.clear()


# -- files ------------------------------------------------------------------------------


class RemoteFiles:
    """``sb.files``: binary-safe transfers, streamed through the server."""

    def __init__(self, sandbox: RemoteSandbox):
        self._sb = sandbox
        self._http = sandbox._http

    def write(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        """Create or replace ``path`` (parents are created) with ``data``."""
        self._http.run(ops.file_write(self._sb.id, self._sb.abs_path(path), data, mode))

    def read(self, path: str) -> bytes:
        """The bytes of ``path`` (symlinks are followed)."""
        return self._http.run(ops.file_read(self._sb.id, self._sb.abs_path(path)))

    def exists(self, path: str) -> bool:
        return self._http.run(ops.file_exists(self._sb.id, self._sb.abs_path(path)))

    def stat(self, path: str) -> FileEntry | None:
        """``path`` with symlinks followed (``path`` is then the target), or None."""
        return self._http.run(ops.file_stat(self._sb.id, self._sb.abs_path(path)))

    def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]:
        """Entries under ``path`` down to ``depth`` levels, sorted by path."""
        return self._http.run(ops.file_list(self._sb.id, self._sb.abs_path(path), depth))

    def upload_dir(self, local: str | Path, remote: str) -> int:
        """Copy the contents of a local directory into ``remote``; returns bytes sent."""
        spool, total = pack_dir(local, self._sb.settings.max_file_bytes)
        with spool:
            call = calls.archive_put(self._sb.id, self._sb.abs_path(remote), rereadable(spool))
            self._http.send(call)
        return total

    def download_dir(self, remote: str, local: str | Path) -> int:
        """Copy the contents of ``remote`` into a local directory; returns bytes received."""
        call = calls.archive_get(self._sb.id, self._sb.abs_path(remote))
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            with self._http.stream(call) as response:
                for chunk in response.iter_bytes(CHUNK):
                    spool.write(chunk)
            return unpack_dir(spool, local)


# -- the sandbox ------------------------------------------------------------------------


def _http(server: str | None, token: str | None, settings: SandboxSettings | None) -> RemoteHttp:
    return RemoteHttp(require_target(server, token, settings))


class RemoteSandbox(RemoteState):
    """A sandbox on a control plane. Build one with ``create``, ``attach`` or ``fork``."""

    def __init__(
        self,
        http: RemoteHttp,
        info: SandboxInfo,
        *,
        detached: bool,
        settings: SandboxSettings | None = None,
    ):
        super().__init__(http.target, info, settings, detached)
        self._http = http
        self.commands = RemoteCommands(self)
        self.sessions = RemoteSessions(self)
        self.files = RemoteFiles(self)
        self._lock = threading.Lock()
        own(self)

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
        info = http.run(ops.create(spec, fields, envhub, idempotency_key))
        return cls(http, info, detached=detach, settings=settings)

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
        return cls(http, http.run(ops.get(sandbox_id)), detached=True, settings=settings)

    @classmethod
    def list(
        cls,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
        all_owners: bool = False,
    ) -> list[SandboxInfo]:
        return _http(server, token, settings).run(ops.list_all(all_owners))

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
        http = _http(server, token, settings)
        infos = http.run(ops.fork(snapshot, n, overrides))
        return [cls(http, info, detached=detach, settings=settings) for info in infos]

    @classmethod
    def delete_snapshot(
        cls,
        snapshot: Snapshot | str,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
    ) -> None:
        _http(server, token, settings).run(ops.delete_snapshot(snapshot))

    # -- lifecycle --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Commit the filesystem to an image on the server."""
        self.ensure_running()
        return self._http.run(ops.snapshot(self.id))

    def info(self) -> SandboxInfo:
        return self._http.run(ops.get(self.id))

    def restart(self) -> None:
        """Kill every process in the sandbox (sessions included) and start it again."""
        self.ensure_running()
        self._http.run(ops.restart(self.id))
        self.sessions.ended()

    def attach_shell(self) -> int | None:
        """A shell on this process's stdin/stdout/stderr (see ``remote.shell``)."""
        return attach_shell(self)

    def close(self) -> None:
        """Stop and delete the sandbox. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._http.run(ops.delete(self.id))
        disown(self)

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
