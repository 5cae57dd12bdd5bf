"""``AsyncRemoteSandbox``: the asyncio face of ``RemoteSandbox``.

Same calls (``remote_calls``), same parsing and errors (``remote_core``) as
the blocking face; only the transport is httpx's ``AsyncClient``, so thousands
of concurrent commands need no threads. ``AsyncSandbox.create(spec,
server=...)`` returns one.
"""

from __future__ import annotations

import asyncio
import tempfile
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
from openale.sandbox.remote_http import AsyncRemoteHttp
from openale.sandbox.remote_ws import AsyncSessionSocket
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot
from openale.server.schemas import SSE_ERROR, SSE_EXIT, SSE_START, ExistsResponse, SessionCreated


class AsyncRemoteCommandHandle:
    """A command running on the server; ``await wait()`` returns its ``CommandResult``."""

    def __init__(self, sandbox: AsyncRemoteSandbox, call: Call, cmd: str):
        self._sb = sandbox
        self.cmd = cmd
        self.command_id: str | None = None
        self._call = call
        self._result: CommandResult | None = None
        self._error: SandboxError | None = None
        self._started = asyncio.Event()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async with self._sb._http.stream(self._call) as response:
                parser = SseParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is None:
                        continue
                    name, data = event
                    if name == SSE_START:
                        self.command_id = data["command_id"]
                        self._started.set()
                    elif name == SSE_EXIT:
                        self._result = CommandResult.model_validate(data)
                    elif name == SSE_ERROR:
                        self._error = stream_error(data)
            if self._result is None and self._error is None:
                self._error = ServerError("the command stream ended without an exit event")
        except SandboxError as e:
            self._error = e
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
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    async def kill(self) -> None:
        """SIGKILL the command and everything it started."""
        await self._started.wait()
        if self.command_id is not None and not self.done:
            try:
                await self._sb._http.send(calls.interrupt_command(self._sb.id, self.command_id))
            except SandboxNotFoundError:
                pass  # it ended meanwhile: nothing left to kill, as embedded


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
        self._sb.ensure_running()
        call = calls.run(self._sb.id, cmd, timeout, env, cwd, user, stream=background)
        if background:
            handle = AsyncRemoteCommandHandle(self._sb, call, cmd)
            await handle._started.wait()
            if handle.command_id is None and handle._error is not None:
                raise handle._error
            return handle
        return CommandResult.model_validate(await self._sb._http.json(call))


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
            if result is None:
                result = CommandResult.model_validate(await self._sb._http.json(call))
        except SessionClosedError:
            self.closed = True
            raise
        return result

    async def interrupt(self) -> None:
        await self._sb._http.send(calls.session_interrupt(self._sb.id, self.id))

    async def close(self) -> None:
        await self._socket.close()
        if self.closed:
            return
        self.closed = True
        try:
            await self._sb._http.send(calls.session_delete(self._sb.id, self.id))
        except (SessionClosedError, SandboxNotRunningError):
            pass
        except SandboxError as e:
            if e.status_code != 404:
                raise


class AsyncRemoteSessions:
    def __init__(self, sandbox: AsyncRemoteSandbox):
        self._sb = sandbox

    async def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> AsyncRemoteSession:
        self._sb.ensure_running()
        answer = await self._sb._http.json(calls.session_create(self._sb.id, cwd, env, user))
        return AsyncRemoteSession(self._sb, SessionCreated.model_validate(answer).session_id)


class AsyncRemoteFiles:
    def __init__(self, sandbox: AsyncRemoteSandbox):
        self._sb = sandbox

    def _abs(self, path: str) -> str:
        return abs_path(self._sb.spec.workdir, path)

    async def write(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        payload = data.encode() if isinstance(data, str) else bytes(data)
        await self._sb._http.send(calls.file_write(self._sb.id, self._abs(path), payload, mode))

    async def read(self, path: str) -> bytes:
        return (await self._sb._http.send(calls.file_read(self._sb.id, self._abs(path)))).content

    async def exists(self, path: str) -> bool:
        answer = await self._sb._http.json(calls.file_exists(self._sb.id, self._abs(path)))
        return ExistsResponse.model_validate(answer).exists

    async def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]:
        rows = await self._sb._http.json(calls.file_list(self._sb.id, self._abs(path), depth))
        return [FileEntry.model_validate(row) for row in rows]

    async def upload_dir(self, local: str | Path, remote: str) -> int:
        spool, total = await asyncio.to_thread(pack_dir, local, SandboxSettings().max_file_bytes)
        with spool:
            call = calls.archive_put(self._sb.id, self._abs(remote), replay(spool))
            await self._sb._http.send(call)
        return total

    async def download_dir(self, remote: str, local: str | Path) -> int:
        remote = self._abs(remote)
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
            async with self._sb._http.stream(calls.archive_get(self._sb.id, remote)) as response:
                async for chunk in response.aiter_bytes(CHUNK):
                    spool.write(chunk)
            return await asyncio.to_thread(unpack_dir, spool, local)


def _http(
    server: str | None, token: str | None, settings: SandboxSettings | None
) -> AsyncRemoteHttp:
    target = resolve_target(server, token, settings)
    if target is None:
        raise ValueError("no server: pass server= or set ALE_SERVER")
    return AsyncRemoteHttp(target)


class AsyncRemoteSandbox:
    """A sandbox on a control plane, from asyncio (``AsyncSandbox.create(spec, server=URL)``)."""

    def __init__(self, http: AsyncRemoteHttp, info: SandboxInfo, *, detached: bool):
        self._http = http
        self.id = info.id
        self.spec = info.spec
        self.server = http.target.server
        self.detached = detached
        self.closed = False
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
        http = _http(server, token, settings)
        answer = await http.json(calls.create(spec, fields, envhub, idempotency_key))
        return cls(http, SandboxInfo.model_validate(answer), detached=detach)

    @classmethod
    async def attach(
        cls,
        sandbox_id: str,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
    ) -> AsyncRemoteSandbox:
        http = _http(server, token, settings)
        info = SandboxInfo.model_validate(await http.json(calls.get(sandbox_id)))
        return cls(http, info, detached=True)

    @classmethod
    async def list(
        cls,
        *,
        server: str | None = None,
        token: str | None = None,
        settings: SandboxSettings | None = None,
        all_owners: bool = False,
    ) -> list[SandboxInfo]:
        rows = await _http(server, token, settings).json(calls.list_all(all_owners))
        return [SandboxInfo.model_validate(r) for r in rows]

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
        if n < 1:
            raise ValueError("n must be at least 1")
        http = _http(server, token, settings)
        snap_id = snapshot.id if isinstance(snapshot, Snapshot) else snapshot
        rows = await http.json(calls.fork(snap_id, n, overrides))
        return [cls(http, SandboxInfo.model_validate(r), detached=detach) for r in rows]

    async def snapshot(self) -> Snapshot:
        self.ensure_running()
        return Snapshot.model_validate(await self._http.json(calls.snapshot(self.id)))

    async def info(self) -> SandboxInfo:
        return SandboxInfo.model_validate(await self._http.json(calls.get(self.id)))

    async def restart(self) -> None:
        self.ensure_running()
        await self._http.send(calls.restart(self.id))

    def ensure_running(self) -> None:
        if self.closed:
            raise SandboxNotRunningError(f"sandbox {self.id} is closed")

    async def close(self) -> None:
        """Stop and delete the sandbox. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            await self._http.send(calls.delete(self.id))
        except SandboxError as e:
            if e.status_code != 404:
                raise

    async def __aenter__(self) -> AsyncRemoteSandbox:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncRemoteSandbox({self.id!r}, image={self.spec.image!r}, server={self.server!r})"
