"""``AsyncSandbox``: the asyncio face of ``Sandbox``.

It is the same core: every method runs the synchronous implementation in a
worker thread (the Docker SDK is blocking), so behaviour, errors and audit
records are identical and there is one place to fix anything.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from openale.sandbox.commands import CommandHandle
from openale.sandbox.files import FileEntry
from openale.sandbox.protocol import AnyAsyncSandbox
from openale.sandbox.sandbox import Sandbox
from openale.sandbox.session import Session
from openale.sandbox.settings import SandboxSettings, is_remote
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot

_run = asyncio.to_thread


class AsyncCommandHandle:
    def __init__(self, handle: CommandHandle):
        self._handle = handle

    @property
    def done(self) -> bool:
        return self._handle.done

    async def wait(self, timeout: float | None = None) -> CommandResult:
        return await _run(self._handle.wait, timeout)

    async def kill(self) -> None:
        await _run(self._handle.kill)


class AsyncCommands:
    def __init__(self, sandbox: Sandbox):
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
    ) -> CommandResult | AsyncCommandHandle:
        result = await _run(
            self._sb.commands.run,
            cmd,
            timeout=timeout,
            env=env,
            cwd=cwd,
            user=user,
            background=background,
        )
        return AsyncCommandHandle(result) if isinstance(result, CommandHandle) else result


class AsyncSession:
    def __init__(self, session: Session):
        self._session = session
        self.id = session.id

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        return await _run(self._session.run, cmd, timeout)

    async def interrupt(self) -> None:
        await _run(self._session.interrupt)

    async def close(self) -> None:
        await _run(self._session.close)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


class AsyncSessions:
    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox

    async def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> AsyncSession:
        return AsyncSession(await _run(self._sb.sessions.create, cwd=cwd, env=env, user=user))


class AsyncFiles:
    def __init__(self, sandbox: Sandbox):
        self._files = sandbox.files

    async def write(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        await _run(self._files.write, path, data, mode)

    async def read(self, path: str) -> bytes:
        return await _run(self._files.read, path)

    async def exists(self, path: str) -> bool:
        return await _run(self._files.exists, path)

    async def stat(self, path: str) -> FileEntry | None:
        return await _run(self._files.stat, path)

    async def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]:
        return await _run(self._files.list, path, depth)

    async def upload_dir(self, local: str | Path, remote: str) -> int:
        return await _run(self._files.upload_dir, local, remote)

    async def download_dir(self, remote: str, local: str | Path) -> int:
        return await _run(self._files.download_dir, remote, local)


class AsyncSandbox:
    """``async with await AsyncSandbox.create(spec) as sb: await sb.commands.run("ls")``."""

    def __init__(self, sandbox: Sandbox):
        self.sync = sandbox
        self.id = sandbox.id
        self.spec = sandbox.spec
        self.commands = AsyncCommands(sandbox)
        self.sessions = AsyncSessions(sandbox)
        self.files = AsyncFiles(sandbox)

    @classmethod
    async def create(
        cls,
        spec: SandboxSpec | dict | None = None,
        *,
        detach: bool = False,
        settings: SandboxSettings | None = None,
        server: str | None = None,
        token: str | None = None,
        **fields,
    ) -> AnyAsyncSandbox:
        """Start a sandbox; with ``server=`` (or ``ALE_SERVER``) on that control plane."""
        if is_remote(server, settings):
            from openale.sandbox.remote.aio import AsyncRemoteSandbox

            return await AsyncRemoteSandbox.create(
                spec, detach=detach, server=server, token=token, settings=settings, **fields
            )
        return cls(await _run(Sandbox.create, spec, detach=detach, settings=settings, **fields))

    @classmethod
    async def attach(
        cls,
        sandbox_id: str,
        settings: SandboxSettings | None = None,
        *,
        server: str | None = None,
        token: str | None = None,
    ) -> AnyAsyncSandbox:
        if is_remote(server, settings):
            from openale.sandbox.remote.aio import AsyncRemoteSandbox

            return await AsyncRemoteSandbox.attach(
                sandbox_id, server=server, token=token, settings=settings
            )
        return cls(await _run(Sandbox.attach, sandbox_id, settings))

    @classmethod
    async def list(
        cls,
        settings: SandboxSettings | None = None,
        *,
        server: str | None = None,
        token: str | None = None,
    ) -> list[SandboxInfo]:
        if is_remote(server, settings):
            from openale.sandbox.remote.aio import AsyncRemoteSandbox

            return await AsyncRemoteSandbox.list(server=server, token=token, settings=settings)
        return await _run(Sandbox.list, settings)

    @classmethod
    async def fork(
        cls,
        snapshot: Snapshot | str,
        n: int = 1,
        *,
        detach: bool = False,
        settings: SandboxSettings | None = None,
        server: str | None = None,
        token: str | None = None,
        **overrides,
    ) -> list[AnyAsyncSandbox]:
        if is_remote(server, settings):
            from openale.sandbox.remote.aio import AsyncRemoteSandbox

            return await AsyncRemoteSandbox.fork(
                snapshot,
                n,
                detach=detach,
                server=server,
                token=token,
                settings=settings,
                **overrides,
            )
        forks = await _run(Sandbox.fork, snapshot, n, detach=detach, settings=settings, **overrides)
        return [cls(sb) for sb in forks]

    async def snapshot(self) -> Snapshot:
        return await _run(self.sync.snapshot)

    async def info(self) -> SandboxInfo:
        return await _run(self.sync.info)

    async def restart(self) -> None:
        await _run(self.sync.restart)

    async def close(self) -> None:
        await _run(self.sync.close)

    async def __aenter__(self) -> AsyncSandbox:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
