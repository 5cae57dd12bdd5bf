"""Sandboxes spread over a Ray cluster: each one lives on a node that runs Docker.

Ray does the placement. Every sandbox is a small actor, ``SandboxHost``, that asks
Ray for the sandbox's own CPUs and memory (``num_cpus=spec.cpus``,
``memory=spec.memory_bytes``) plus a sliver of the custom resource ``docker``,
which a node advertises when it has a container engine (``ray start
--resources='{"docker": 1}'``). So a node never hosts more sandboxes than its
cores and memory hold, and a create that no node can take fails with a clear
error after ``placement_timeout_s`` instead of hanging.

The actor drives an embedded ``Sandbox`` on its node's local engine; the caller
holds a ``RaySandbox``, which has the embedded API (``sb.commands.run``,
``sb.sessions.create().run``, ``sb.files.write`` ...) and forwards each call to the
actor. Typed errors cross the boundary as themselves: Ray re-raises an actor's
exception as an instance of the original class.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any

from openale.sandbox.errors import SandboxError, SandboxNotFoundError, SessionClosedError
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot, as_spec

DOCKER_RESOURCE = "docker"
# Each sandbox takes this much of a node's "docker" resource: only nodes that have
# one can host sandboxes, and the CPU and memory requests decide how many fit.
_DOCKER_SHARE = 0.001
# Environment the actors need to find the same sandbox settings as the caller.
_FORWARDED_ENV = ("DOCKER_HOST", "SSL_CERT_FILE")


class PlacementError(SandboxError):
    """No node of the Ray cluster can take the sandbox (CPUs, memory or Docker missing)."""


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is a dependency
        raise SandboxError("the Ray backend needs `pip install ray`") from e
    return ray


class SandboxHost:
    """The actor behind one sandbox: owns the embedded ``Sandbox`` and its sessions."""

    def __init__(self, spec: dict[str, Any], detach: bool):
        from openale.sandbox.sandbox import Sandbox

        self.sandbox = Sandbox.create(SandboxSpec(**spec), detach=detach)
        self.sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        ray = _ray()
        ctx = ray.get_runtime_context()
        return {
            "sandbox_id": self.sandbox.id,
            "container": self.sandbox.container,
            "node_id": ctx.get_node_id(),
            "node_ip": ray.util.get_node_ip_address(),
        }

    def call(self, path: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``sandbox.<path>(*args, **kwargs)``, e.g. ``path="files.write"``."""
        target: Any = self.sandbox
        for name in path.split("."):
            if name.startswith("_"):
                raise AttributeError(f"{path!r} is not part of the sandbox API")
            target = getattr(target, name)
        return target(*args, **kwargs)

    def open_session(self, **kwargs: Any) -> str:
        session = self.sandbox.sessions.create(**kwargs)
        session_id = "ses-" + secrets.token_hex(6)
        with self._lock:
            self.sessions[session_id] = session
        return session_id

    def session_call(self, session_id: str, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None or method not in ("run", "interrupt", "close"):
            raise SessionClosedError(f"no session {session_id!r} in sandbox {self.sandbox.id}")
        result = getattr(session, method)(*args, **kwargs)
        if method == "close":
            with self._lock:
                self.sessions.pop(session_id, None)
        return result

    def close(self) -> None:
        self.sandbox.close()


class RaySandboxBackend:
    """Creates sandboxes on the nodes of a Ray cluster (``address=None``: a local instance)."""

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
            ray.init(
                address=address,
                namespace=namespace,
                include_dashboard=False,
                runtime_env={"env_vars": env},
                **(init_kwargs or {}),
            )
        self.placement_timeout_s = placement_timeout_s
        self.call_timeout_s = call_timeout_s
        self._host = ray.remote(max_concurrency=64)(SandboxHost)
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

    def create(self, spec: SandboxSpec | dict | None = None, *, detach: bool = False) -> RaySandbox:
        """Place a sandbox on a node with room for its CPUs and memory, and start it there."""
        ray = _ray()
        spec = as_spec(spec)
        actor = self._host.options(
            num_cpus=spec.cpus,
            memory=spec.memory_bytes,
            resources={DOCKER_RESOURCE: _DOCKER_SHARE},
        ).remote(spec.model_dump(), detach)
        try:
            where = ray.get(actor.describe.remote(), timeout=self.placement_timeout_s)
        except ray.exceptions.GetTimeoutError:
            ray.kill(actor)
            raise PlacementError(
                f"no Ray node with a Docker engine has {spec.cpus} CPUs and {spec.memory} of"
                f" memory free after {self.placement_timeout_s:.0f}s; free some sandboxes or"
                " add nodes started with --resources='{\"docker\": 1}'"
            ) from None
        except ray.exceptions.RayActorError as e:
            # The constructor raised: surface the sandbox error itself.
            cause = getattr(e, "cause", None) or getattr(e, "error", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise SandboxError(f"the sandbox actor died while starting: {e}") from None
        sandbox = RaySandbox(self, actor, spec, where)
        with self._lock:
            self._sandboxes[sandbox.id] = sandbox
        return sandbox

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
        self.commands = _Namespace(self, "commands")
        self.files = _Namespace(self, "files")
        self.sessions = _RaySessions(self)
        self.closed = False

    def _call(self, path: str, *args: Any, **kwargs: Any) -> Any:
        return self.backend._call(self.actor.call.remote(path, *args, **kwargs))

    def info(self) -> SandboxInfo:
        return self._call("info")

    def snapshot(self) -> Snapshot:
        return self._call("snapshot")

    def restart(self) -> None:
        self._call("restart")

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
    """``sb.commands`` / ``sb.files``: every public method forwards to the actor."""

    def __init__(self, sandbox: RaySandbox, name: str):
        self._sb = sandbox
        self._name = name

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)
        if self._name == "commands" and method == "run":
            return self._run
        return lambda *a, **kw: self._sb._call(f"{self._name}.{method}", *a, **kw)

    def _run(self, cmd: str, **kwargs: Any) -> CommandResult:
        if kwargs.get("background"):
            raise SandboxError("background commands are not forwarded over Ray; use a session")
        return self._sb._call("commands.run", cmd, **kwargs)


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
