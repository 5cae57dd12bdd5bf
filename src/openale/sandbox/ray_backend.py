"""Sandboxes spread over a Ray cluster: each one lives on a node that runs Docker.

Ray does the placement. Every sandbox is a small actor, ``SandboxHost``, that asks
Ray for the sandbox's own CPUs and memory (``num_cpus=spec.cpus``,
``memory=spec.memory_bytes``) plus a sliver of the custom resource ``docker``,
which a node advertises when it has a container engine (``ray start
--resources='{"docker": 1}'``). So a node never hosts more sandboxes than its
cores and memory hold, and a create that no node can take fails with a clear
error after ``placement_timeout_s`` instead of hanging.

The actor (``openale.sandbox.ray_host``) drives an embedded ``Sandbox`` on its
node's local engine; the caller holds a ``RaySandbox``, which has the embedded
API (``sb.commands.run``, ``sb.commands.stream``, ``sb.sessions.create().run``,
``sb.files.write`` ...) and forwards each call to the actor. Typed errors cross
the boundary as themselves: Ray re-raises an actor's exception as an instance
of the original class. One ``NodeAgent`` per Docker node lists and removes
containers and images there, for reconciliation and snapshots.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

from openale.sandbox.errors import SandboxError, SandboxNotFoundError
from openale.sandbox.ray_host import NodeAgent, SandboxHost, portable_settings
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot, as_spec

__all__ = ["PlacementError", "RaySandbox", "RaySandboxBackend", "RaySession", "SandboxHost"]

DOCKER_RESOURCE = "docker"
# Each sandbox takes this much of a node's "docker" resource: only nodes that have
# one can host sandboxes, and the CPU and memory requests decide how many fit.
_DOCKER_SHARE = 0.001
# Environment the actors need to find the same sandbox settings as the caller.
_FORWARDED_ENV = ("DOCKER_HOST", "SSL_CERT_FILE")
UPLOAD_CHUNK = 8 << 20  # bytes per call when an upload is pushed to the sandbox's node


class PlacementError(SandboxError):
    """No node of the Ray cluster can take the sandbox (CPUs, memory or Docker missing)."""

    status_code = 503  # the control plane's answer: try again when capacity frees up


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency
        raise SandboxError("the Ray backend needs `pip install ray`") from e
    return ray


def _actor_error(e: Exception) -> BaseException:
    """The exception an actor's constructor raised, if Ray kept it."""
    cause = getattr(e, "cause", None) or getattr(e, "error", None)
    if isinstance(cause, BaseException):
        return cause
    return SandboxError(f"the sandbox actor died while starting: {e}")


class RaySandboxBackend:
    """Creates sandboxes on the nodes of a Ray cluster.

    ``address=None`` starts a local instance whose one node (this host) has the
    ``docker`` resource; joining an existing cluster leaves its resources as they are.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        namespace: str = "openale",
        placement_timeout_s: float = 60.0,
        call_timeout_s: float | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ):
        ray = _ray()
        if not ray.is_initialized():
            env = {
                k: v for k, v in os.environ.items() if k.startswith("ALE_") or k in _FORWARDED_ENV
            }
            kwargs = dict(init_kwargs or {})
            if address is None and not os.environ.get("RAY_ADDRESS"):
                # A fresh local instance: this host runs the engine, so it hosts sandboxes.
                kwargs.setdefault("resources", {DOCKER_RESOURCE: 1})
            ray.init(
                address=address,
                namespace=namespace,
                include_dashboard=False,
                runtime_env={"env_vars": env},
                **kwargs,
            )
        self.placement_timeout_s = placement_timeout_s
        self.call_timeout_s = call_timeout_s
        self._hosts: dict[type, Any] = {}
        self._agent_cls = ray.remote(max_concurrency=16)(NodeAgent)
        self._agents: dict[str, Any] = {}
        self._sandboxes: dict[str, RaySandbox] = {}
        self._lock = threading.Lock()

    def nodes(self) -> list[dict[str, Any]]:
        """Live nodes that can host sandboxes, with their total CPUs and memory."""
        return [
            {
                "node_id": n["NodeID"],
                "address": n["NodeManagerAddress"],
                "cpus": n["Resources"].get("CPU", 0.0),
                "memory": n["Resources"].get("memory", 0.0),
            }
            for n in _ray().nodes()
            if n["Alive"] and n["Resources"].get(DOCKER_RESOURCE, 0) > 0
        ]

    def create(
        self,
        spec: SandboxSpec | dict | None = None,
        *,
        detach: bool = False,
        host: type[SandboxHost] = SandboxHost,
        node_id: str | None = None,
        **host_kwargs: Any,
    ) -> RaySandbox:
        """Place a sandbox on a node with room for its CPUs and memory, and start it there.

        ``node_id`` pins it to one node (a fork to the node holding its snapshot,
        a re-attached sandbox to the node holding its container). ``host`` is the
        actor class; ``host_kwargs`` go to its ``start``.
        """
        ray = _ray()
        spec = as_spec(spec)
        options: dict[str, Any] = {
            "num_cpus": spec.cpus,
            "memory": spec.memory_bytes,
            "resources": {DOCKER_RESOURCE: _DOCKER_SHARE},
        }
        if node_id is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
        actor = self._host(host).options(**options).remote(spec.model_dump(), detach, **host_kwargs)
        try:
            where = ray.get(actor.describe.remote(), timeout=self.placement_timeout_s)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor)
            on = f"node {node_id[:12]}" if node_id else "Ray node with a Docker engine"
            raise PlacementError(
                f"no {on} has {spec.cpus} CPUs and {spec.memory} of memory free after"
                f" {self.placement_timeout_s:.0f}s; free some sandboxes or add nodes started"
                " with --resources='{\"docker\": 1}'"
            ) from None
        except ray.exceptions.RayActorError as e:
            raise _actor_error(e) from None
        sandbox = RaySandbox(self, actor, spec, where)
        with self._lock:
            self._sandboxes[sandbox.id] = sandbox
        return sandbox

    def _host(self, cls: type[SandboxHost]) -> Any:
        with self._lock:
            if cls not in self._hosts:
                self._hosts[cls] = _ray().remote(max_concurrency=64)(cls)
            return self._hosts[cls]

    def agents(self, settings: SandboxSettings | None = None) -> dict[str, Any]:
        """``{node id: NodeAgent}`` for every live Docker node (started on first use)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        live = {n["node_id"] for n in self.nodes()}
        with self._lock:
            for node in live - self._agents.keys():
                self._agents[node] = self._agent_cls.options(
                    num_cpus=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                ).remote(portable_settings(settings) if settings else None)
            for gone in self._agents.keys() - live:
                self._agents.pop(gone)
            return dict(self._agents)

    def get(self, sandbox_id: str) -> RaySandbox:
        with self._lock:
            sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise SandboxNotFoundError(f"no sandbox {sandbox_id!r} on this Ray backend")
        return sandbox

    def list(self) -> list[RaySandbox]:
        with self._lock:
            return list(self._sandboxes.values())

    def forget(self, sandbox_id: str) -> None:
        with self._lock:
            self._sandboxes.pop(sandbox_id, None)

    def close_all(self) -> None:
        for sandbox in self.list():
            sandbox.close()

    def _call(self, ref: Any) -> Any:
        return _ray().get(ref, timeout=self.call_timeout_s)


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
