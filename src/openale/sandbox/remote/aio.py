"""``AsyncRemoteSandbox``: the asyncio face of ``RemoteSandbox``.

Same operations (``ops``: requests, parsing, errors) as the blocking face; only
the transport is httpx's ``AsyncClient``, so thousands of concurrent commands
need no threads. ``AsyncSandbox.create(spec, server=...)`` returns one.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from openale.sandbox.errors import SandboxError, SessionClosedError
from openale.sandbox.files import FileEntry
from openale.sandbox.remote import calls, ops
from openale.sandbox.remote.core import Call, CommandEvents, RemoteState, require_target
from openale.sandbox.remote.http import AsyncRemoteHttp
from openale.sandbox.remote.tar import CHUNK, pack_dir, rereadable, unpack_dir
from openale.sandbox.remote.ws import AsyncSessionSocket
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot


class AsyncRemoteCommandHandle:
    """A command running on the server; ``await wait()`` returns its ``CommandResult``."""

    def __init__(self, sandbox: AsyncRemoteSandbox, call: Call, cmd: str):
        self._sb = sandbox
        self.cmd = cmd
        self._call = call
        self._events = CommandEvents()
        self._started = asyncio.Event()
        self._task = asyncio.create_task(self._pump())

    @property
    def command_id(self) -> str | None:
        return self._events.command_id

    async def _pump(self) -> None:
        try:
            async with self._sb._http.stream(self._call) as response:
                async for line in response.aiter_lines():
                    if self._events.feed(line):
                        self._started.set()
            self._events.end()
        except SandboxError as e:
            self._events.end(e)
        finally:
            self._started.set()

    @property
    def done(self) -> bool:
        return self._task.done()

    async def wait(self, timeout: float | None = None) -> CommandResult:
        """The result once the command ends (``TimeoutError`` after ``timeout`` seconds)."""
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            raise TimeoutError(f"command still running after {timeout}s: {self.cmd!r}") from None
        return self._events.outcome()

    async def kill(self) -> None:
        """SIGKILL the command and everything it started."""
        await self._started.wait()
        if self.command_id is not None and not self.done:
            await self._sb._http.run(ops.interrupt_command(self._sb.id, self.command_id))


class AsyncRemoteCommands:
    def __init__(self, sandbox: AsyncRemoteSandbox):
        self._sb = sandbox

    async def run(
        self,
        cmd: str,
        *,
        timeout: float | None = 600.0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        background: bool = False,
    ) -> CommandResult | AsyncRemoteCommandHandle:
        """Run ``cmd`` with ``sh -c``. ``background=True`` returns a handle once it started."""
        self._sb.ensure_running()
        options = {"timeout": timeout, "env": env, "cwd": cwd, "user": user}
        if not background:
            return await self._sb._http.run(ops.run(self._sb.id, cmd, **options))
        call = calls.run(self._sb.id, cmd, **options, stream=True)
        handle = AsyncRemoteCommandHandle(self._sb, call, cmd)
        await handle._started.wait()
        if error := handle._events.failed_to_start:
            raise error
        return handle


class AsyncRemoteSession:
    def __init__(self, sandbox: AsyncRemoteSandbox, session_id: str):
        self._sb = sandbox
        self.id = session_id
        self.closed = False
        self._socket = AsyncSessionSocket(sandbox._http.target, sandbox.id, session_id)

    async def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        """Run ``cmd`` in the shell: over the session's WebSocket, else one HTTP request."""
        call = calls.session_run(self._sb.id, self.id, cmd, timeout)
        try:
            result = await self._socket.run(call.json, call.read_timeout)
            return result if result is not None else await self._sb._http.run(ops.session_run(call))
        except SessionClosedError:
            self.closed = True
            raise

    async def interrupt(self) -> None:
        await self._sb._http.run(ops.session_interrupt(self._sb.id, self.id))

    async def ended(self) -> None:
        """The shell is gone (its sandbox restarted): release the socket, send nothing."""
        self.closed = True
        await self._socket.close()

    async def close(self) -> None:
        was_closed = self.closed
        await self.ended()
        if not was_closed:
            await self._sb._http.run(ops.session_delete(self._sb.id, self.id))

    async def __aenter__(self) -> AsyncRemoteSession:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class AsyncRemoteSessions:
    def __init__(self, sandbox: AsyncRemoteSandbox):
        self._sb = sandbox
        self._open: list[AsyncRemoteSession] = []

    async def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> AsyncRemoteSession:
        self._sb.ensure_running()
        session_id = await self._sb._http.run(ops.session_create(self._sb.id, cwd, env, user))
        session = AsyncRemoteSession(self._sb, session_id)
        self._open.append(session)
        return session

    async def ended(self) -> None:
        """Every shell died with a restart of the sandbox: close their sockets too."""
        for s in self._open:
            await s.ended()
        self._open.clear()


class AsyncRemoteFiles:
    def __init__(self, sandbox: AsyncRemoteSandbox):
        self._sb = sandbox
        self._http = sandbox._http

    async def write(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        await self._http.run(ops.file_write(self._sb.id, self._sb.abs_path(path), data, mode))

    async def read(self, path: str) -> bytes:
        return await self._http.run(ops.file_read(self._sb.id, self._sb.abs_path(path)))

    async def exists(self, path: str) -> bool:
        return await self._http.run(ops.file_exists(self._sb.id, self._sb.abs_path(path)))

    async def stat(self, path: str) -> FileEntry | None:
        return await self._http.run(ops.file_stat(self._sb.id, self._sb.abs_path(path)))

    async def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]:
        return await self._http.run(ops.file_list(self._sb.id, self._sb.abs_path(path), depth))

    async def upload_dir(self, local: str | Path, remote: str) -> int:
        limit = self._sb.settings.max_file_bytes
        spool, total = await asyncio.to_thread(pack_dir, local, limit)
        with spool:
            call = calls.archive_put(self._sb.id, self._sb.abs_path(remote), rereadable(spool))
            await self._http.send(call)
        return total

    async def download_dir(self, remote: str, local: str | Path) -> int:
        call = calls.archive_get(self._sb.id, self._sb.abs_path(remote))
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            async with self._http.stream(call) as response:
                async for chunk in response.aiter_bytes(CHUNK):
                    spool.write(chunk)
            return await asyncio.to_thread(unpack_dir, spool, local)


def _http(
    server: str | None, token: str | None, settings: SandboxSettings | None
) -> AsyncRemoteHttp:
    return AsyncRemoteHttp(require_target(server, token, settings))


class AsyncRemoteSandbox(RemoteState):
    """A sandbox on a control plane, from asyncio (``AsyncSandbox.create(spec, server=URL)``)."""

    def __init__(
        self,
        http: AsyncRemoteHttp,
        info: SandboxInfo,
        *,
        detached: bool,
        settings: SandboxSettings | None = None,
    ):
        super().__init__(http.target, info, settings, detached)
        self._http = http
        self.commands = AsyncRemoteCommands(self)
        self.sessions = AsyncRemoteSessions(self)
        self.files = AsyncRemoteFiles(self)

    @classmethod
    async def create(
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
    ) -> AsyncRemoteSandbox:
        """Start a sandbox on the server; ``envhub="name@version"`` uses an EnvHub image."""
        http = _http(server, token, settings)
        info = await http.run(ops.create(spec, fields, envhub, idempotency_key))
        return cls(http, info, detached=detach, settings=settings)

    @classmethod
    async def attach(
        cls,
        sandbox_id: str,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
    ) -> AsyncRemoteSandbox:
        """A handle on an existing sandbox of this token's owner."""
        http = _http(server, token, settings)
        return cls(http, await http.run(ops.get(sandbox_id)), detached=True, settings=settings)

    @classmethod
    async def list(
        cls,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
        all_owners: bool = False,
    ) -> list[SandboxInfo]:
        return await _http(server, token, settings).run(ops.list_all(all_owners))

    @classmethod
    async def fork(
        cls,
        snapshot: Snapshot | str,
        n: int = 1,
        *,
        detach: bool = False,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
        **overrides,
    ) -> list[AsyncRemoteSandbox]:
        """Start ``n`` sandboxes from a snapshot on the server."""
        http = _http(server, token, settings)
        infos = await http.run(ops.fork(snapshot, n, overrides))
        return [cls(http, info, detached=detach, settings=settings) for info in infos]

    @classmethod
    async def delete_snapshot(
        cls,
        snapshot: Snapshot | str,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
    ) -> None:
        await _http(server, token, settings).run(ops.delete_snapshot(snapshot))

    async def snapshot(self) -> Snapshot:
        """Commit the filesystem to an image on the server."""
        self.ensure_running()
        return await self._http.run(ops.snapshot(self.id))

    async def info(self) -> SandboxInfo:
        return await self._http.run(ops.get(self.id))

    async def restart(self) -> None:
        """Kill every process in the sandbox (sessions included) and start it again."""
        self.ensure_running()
        await self._http.run(ops.restart(self.id))
        await self.sessions.ended()

    async def close(self) -> None:
        """Stop and delete the sandbox. Idempotent."""
        if self.closed:
            return
        self.closed = True
        await self._http.run(ops.delete(self.id))

    async def __aenter__(self) -> AsyncRemoteSandbox:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
