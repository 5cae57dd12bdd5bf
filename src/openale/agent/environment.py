"""Where the agent's tools act: a sandbox (the default) or, opt-in, a host directory.

Tools only see this small interface, so the same tool code works on both.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from openale.sandbox import AnySandbox, CommandResult
from openale.sandbox.protocol import ShellSession


@runtime_checkable
class Environment(Protocol):
    workdir: str

    def shell(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        """Run ``cmd`` in the persistent shell (``output`` holds stdout+stderr)."""

    def read(self, path: str) -> bytes: ...

    def write(self, path: str, data: bytes | str) -> None: ...

    def exists(self, path: str) -> bool: ...

    def close(self) -> None: ...


class SandboxEnvironment:
    """Tools acting inside a sandbox through one persistent shell session."""

    def __init__(self, sandbox: AnySandbox):
        self.sandbox = sandbox
        self.workdir = sandbox.spec.workdir
        self._session: ShellSession | None = None

    @property
    def session(self) -> ShellSession:
        if self._session is None or self._session.closed:
            self._session = self.sandbox.sessions.create()
        return self._session

    def shell(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        return self.session.run(cmd, timeout=timeout)

    def read(self, path: str) -> bytes:
        return self.sandbox.files.read(path)

    def write(self, path: str, data: bytes | str) -> None:
        self.sandbox.files.write(path, data)

    def exists(self, path: str) -> bool:
        return self.sandbox.files.exists(path)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
