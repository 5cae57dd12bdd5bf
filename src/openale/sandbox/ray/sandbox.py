"""The caller's side of a Ray-hosted sandbox: the embedded API, forwarded to its actor.

``RaySandbox`` has what an embedded ``Sandbox`` has (``commands``, ``sessions``,
``files``, ``snapshot``, ``restart``, ``close``) plus the few engine calls the
control plane's file routes make (``runtime.get_archive/put_archive/stat``),
each done by the actor on the sandbox's node. Output and archives stream back
through Ray streaming generators; uploads go to the node in pieces.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from openale.sandbox.errors import SandboxError
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot

if TYPE_CHECKING:
    from openale.sandbox.ray.backend import RaySandboxBackend

UPLOAD_CHUNK = 8 << 20  # bytes per call when an upload is pushed to the sandbox's node


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency
        raise SandboxError("the Ray backend needs `pip install ray`") from e
    return ray


class RaySandbox:
    """The embedded sandbox API, forwarded to the sandbox's actor on its node."""

    def __init__(self, backend: RaySandboxBackend, actor: Any, spec: SandboxSpec, where: dict):
        self.backend = backend
        self.actor = actor
        self.spec = spec
        self.id: str = where["sandbox_id"]
        self.container: str = where["container"]
        self.node_id: str = where["node_id"]
        self.node_ip: str = where["node_ip"]
        self.commands = _Commands(self)
        self.files = _Namespace(self, "files")
        self.sessions = _RaySessions(self)
        self.runtime = _RayRuntime(self)
        self._settings: SandboxSettings | None = None
        self.closed = False

    def _call(self, path: str, *args: Any, **kwargs: Any) -> Any:
        return self.backend._call(self.actor.call.remote(path, *args, **kwargs))

    @property
    def settings(self) -> SandboxSettings:
        """The sandbox settings on the sandbox's node (caps, limits)."""
        if self._settings is None:
            self._settings = SandboxSettings(**self.backend._call(self.actor.settings.remote()))
        return self._settings

    def info(self) -> SandboxInfo:
        return self._call("info")

    def snapshot(self) -> Snapshot:
        return self._call("snapshot")

    def restart(self) -> None:
        """Kill every process (sessions included) and start the container again."""
        self.backend._call(self.actor.restart.remote())

    def audit_file(
        self,
        action: str,
        path: str,
        *,
        started: float,
        bytes_in: int | None = None,
        bytes_out: int | None = None,
    ) -> None:
        # ``started`` is this process's monotonic clock: send the elapsed time instead.
        elapsed = time.monotonic() - started
        self.backend._call(self.actor.audit_file.remote(action, path, elapsed, bytes_in, bytes_out))

    def detach(self) -> None:
        """Let go of the actor (its CPUs and memory) but keep the container running."""
        if not self.closed:
            self.closed = True
            _ray().kill(self.actor)
            self.backend.forget(self.id)

    def close(self) -> None:
        """Remove the container and free the node's resources."""
        if self.closed:
            return
        try:
            self.backend._call(self.actor.close.remote())
        finally:
            self.closed = True
            _ray().kill(self.actor)
            self.backend.forget(self.id)

    def __enter__(self) -> RaySandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RaySandbox({self.id}, node={self.node_id[:8]}, image={self.spec.image})"


class _Namespace:
    """``sb.files``: every public method forwards to the actor."""

    def __init__(self, sandbox: RaySandbox, name: str):
        self._sb = sandbox
        self._name = name

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *a, **kw: self._sb._call(f"{self._name}.{method}", *a, **kw)


class _Commands:
    """``sb.commands.run`` (to completion) and ``sb.commands.stream`` (piece by piece)."""

    def __init__(self, sandbox: RaySandbox):
        self._sb = sandbox

    def run(self, cmd: str, **kwargs: Any) -> CommandResult:
        if kwargs.get("background"):
            raise SandboxError("background commands are not forwarded over Ray; use stream()")
        return self._sb._call("commands.run", cmd, **kwargs)

    def stream(self, cmd: str, **kwargs: Any) -> RayCommandStream:
        """Start ``sh -c cmd``; iterate the result for its output as it comes."""
        return RayCommandStream(self._sb, cmd, **kwargs)


class RayCommandStream:
    """A command running in a Ray-hosted sandbox, its output streamed from the node.

    Iterating yields ``("stdout" | "stderr", bytes)`` pieces and ends with
    ``("exit", CommandResult)``; ``kill()`` stops the command's process tree.
    Starting raises at once when the command cannot start (sandbox not running).
    """

    def __init__(
        self,
        sandbox: RaySandbox,
        cmd: str,
        *,
        timeout: float | None = 600.0,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
    ):
        ray = _ray()
        self._sb = sandbox
        self.id = "cmd-" + secrets.token_hex(6)
        self.cmd = cmd
        self._refs = sandbox.actor.stream.options(num_returns="streaming").remote(
            self.id, cmd, timeout=timeout, env=env or {}, cwd=cwd, user=user
        )
        ray.get(next(self._refs))  # ("start", id): the exec is running, or this raises

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        ray = _ray()
        for ref in self._refs:
            yield ray.get(ref)

    def wait(self) -> CommandResult:
        """Drain the output and return the result."""
        for kind, data in self:
            if kind == "exit":
                return data
        raise SandboxError(f"the stream of {self.cmd!r} ended without a result")

    def kill(self) -> None:
        self._sb.backend._call(self._sb.actor.kill_command.remote(self.id))


class _RayRuntime:
    """The few engine calls the control plane's file routes make, done on the sandbox's node."""

    def __init__(self, sandbox: RaySandbox):
        self._sb = sandbox

    def stat(self, container: str, path: str) -> dict[str, Any] | None:
        return self._sb.backend._call(self._sb.actor.stat.remote(path))

    def get_archive(self, container: str, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        """A tar stream of ``path`` (read from the node piece by piece) and its stat."""
        ray = _ray()
        refs = self._sb.actor.read_archive.options(num_returns="streaming").remote(path)
        stat = ray.get(next(refs))

        def chunks() -> Iterator[bytes]:
            for ref in refs:
                yield ray.get(ref)

        return chunks(), stat

    def put_archive(self, container: str, directory: str, data: Any) -> bool:
        """Extract a tar (bytes, a file or an iterator of bytes) under ``directory``."""
        sb, call = self._sb, self._sb.backend._call
        upload = call(sb.actor.upload_open.remote())
        for piece in _pieces(data):
            call(sb.actor.upload_write.remote(upload, piece))
        return call(sb.actor.upload_put.remote(upload, directory))


def _pieces(data: Any) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
    elif hasattr(data, "read"):
        while piece := data.read(UPLOAD_CHUNK):
            yield piece
    else:
        pending = b""
        for chunk in data:
            pending += chunk
            if len(pending) >= UPLOAD_CHUNK:
                yield pending
                pending = b""
        if pending:
            yield pending


class _RaySessions:
    def __init__(self, sandbox: RaySandbox):
        self._sb = sandbox

    def create(self, **kwargs: Any) -> RaySession:
        sb = self._sb
        return RaySession(sb, sb.backend._call(sb.actor.open_session.remote(**kwargs)))


class RaySession:
    """A persistent shell inside a Ray-hosted sandbox."""

    def __init__(self, sandbox: RaySandbox, session_id: str):
        self._sb = sandbox
        self.id = session_id

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        ref = self._sb.actor.session_call.remote(self.id, method, *args, **kwargs)
        return self._sb.backend._call(ref)

    @property
    def closed(self) -> bool:
        """Whether the shell has exited (a restart of the sandbox ends every shell)."""
        try:
            return self._call("closed")
        except SandboxError:
            return True

    def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        return self._call("run", cmd, timeout=timeout)

    def interrupt(self) -> None:
        self._call("interrupt")

    def close(self) -> None:
        self._call("close")

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
