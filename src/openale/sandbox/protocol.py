"""``AnySandbox``: the one sandbox type, whether it runs embedded or on a control plane.

``Sandbox.create/attach/fork`` return it; the embedded ``Sandbox`` and the
remote ``RemoteSandbox`` both satisfy it (``AnyAsyncSandbox`` is its asyncio
face, satisfied by ``AsyncSandbox`` and ``AsyncRemoteSandbox``), so callers (the CLI, tasks, agents)
never branch on the concrete class. It is a ``Protocol`` rather than a base
class: the two implementations share no code worth inheriting (one drives the
engine, the other HTTP), and a structural type keeps the remote SDK free of the
embedded classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from openale.sandbox.files import FileEntry
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot


class RunningCommand(Protocol):
    """A background command: ``commands.run(..., background=True)``."""

    cmd: str

    @property
    def done(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> CommandResult: ...

    def kill(self) -> None: ...


class CommandsAPI(Protocol):
    def run(
        self,
        cmd: str,
        *,
        timeout: float | None = 600.0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        background: bool = False,
    ) -> CommandResult | RunningCommand: ...


class ShellSession(Protocol):
    """A persistent shell: ``cd`` and variables carry over between ``run`` calls."""

    id: str

    @property
    def closed(self) -> bool: ...

    def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class SessionsAPI(Protocol):
    def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> ShellSession: ...


class FilesAPI(Protocol):
    """Files and directories in, out and about (paths relative to the workdir)."""

    def write(self, path: str, data: bytes | str, mode: int | None = None) -> None: ...

    def read(self, path: str) -> bytes: ...

    def exists(self, path: str) -> bool: ...

    def stat(self, path: str) -> FileEntry | None: ...

    def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]: ...

    def upload_dir(self, local: str | Path, remote: str) -> int: ...

    def download_dir(self, remote: str, local: str | Path) -> int: ...


@runtime_checkable
class AnySandbox(Protocol):
    """Everything a caller can do with a sandbox, embedded or remote."""

    id: str
    spec: SandboxSpec
    detached: bool
    closed: bool

    @property
    def commands(self) -> CommandsAPI: ...

    @property
    def sessions(self) -> SessionsAPI: ...

    @property
    def files(self) -> FilesAPI: ...

    def info(self) -> SandboxInfo: ...

    def snapshot(self) -> Snapshot: ...

    def restart(self) -> None: ...

    def ensure_running(self) -> None: ...

    def attach_shell(self) -> int | None:
        """A shell on this process's stdin/stdout/stderr until it exits; its exit code."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> AnySandbox: ...

    def __exit__(self, *exc: object) -> None: ...


# -- the asyncio face: the same operations, awaited ------------------------------------


class AsyncRunningCommand(Protocol):
    cmd: str

    @property
    def done(self) -> bool: ...

    async def wait(self, timeout: float | None = None) -> CommandResult: ...

    async def kill(self) -> None: ...


class AsyncCommandsAPI(Protocol):
    async def run(
        self,
        cmd: str,
        *,
        timeout: float | None = 600.0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        background: bool = False,
    ) -> CommandResult | AsyncRunningCommand: ...


class AsyncShellSession(Protocol):
    id: str

    @property
    def closed(self) -> bool: ...

    async def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult: ...

    async def interrupt(self) -> None: ...

    async def close(self) -> None: ...


class AsyncSessionsAPI(Protocol):
    async def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> AsyncShellSession: ...


class AsyncFilesAPI(Protocol):
    async def write(self, path: str, data: bytes | str, mode: int | None = None) -> None: ...

    async def read(self, path: str) -> bytes: ...

    async def exists(self, path: str) -> bool: ...

    async def stat(self, path: str) -> FileEntry | None: ...

    async def list(self, path: str = ".", depth: int = 1) -> list[FileEntry]: ...

    async def upload_dir(self, local: str | Path, remote: str) -> int: ...

    async def download_dir(self, remote: str, local: str | Path) -> int: ...


@runtime_checkable
class AnyAsyncSandbox(Protocol):
    """``AnySandbox`` for asyncio: what ``AsyncSandbox.create/attach/fork`` return."""

    id: str
    spec: SandboxSpec

    @property
    def commands(self) -> AsyncCommandsAPI: ...

    @property
    def sessions(self) -> AsyncSessionsAPI: ...

    @property
    def files(self) -> AsyncFilesAPI: ...

    async def info(self) -> SandboxInfo: ...

    async def snapshot(self) -> Snapshot: ...

    async def restart(self) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> AnyAsyncSandbox: ...

    async def __aexit__(self, *exc: object) -> None: ...
