"""Sandboxes spread over a Ray cluster: each one lives on a node that runs Docker.

Ray does the placement. Every sandbox is a small actor, ``SandboxHost``, that asks
Ray for the sandbox's own CPUs and memory (``num_cpus=spec.cpus``,
``memory=spec.memory_bytes``) plus a sliver of the custom resource ``docker``,
which a node advertises when it has a container engine (``ray start
--resources='{"docker": 1}'``). So a node never hosts more sandboxes than its
cores and memory hold, and a create that no node can take fails with a clear
error after ``placement_timeout_s`` instead of hanging.

The actor (``openale.sandbox.ray.host``) drives an embedded ``Sandbox`` on its
node's local engine; the caller holds a ``RaySandbox``
(``openale.sandbox.ray.sandbox``), which has the embedded API
(``sb.commands.run``, ``sb.commands.stream``, ``sb.sessions.create().run``,
``sb.files.write`` ...) and forwards each call to the actor. Typed errors cross
the boundary as themselves: Ray re-raises an actor's exception as an instance
of the original class. One ``NodeAgent`` per Docker node lists and removes
containers and images there, for reconciliation and snapshots.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from openale.sandbox.errors import SandboxError, SandboxNotFoundError
from openale.sandbox.ray.host import NodeAgent, SandboxHost, portable_settings
from openale.sandbox.ray.sandbox import RayCommandStream, RaySandbox, RaySession, _ray
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import SandboxSpec, as_spec

__all__ = [
    "PlacementError",
    "RayCommandStream",
    "RaySandbox",
    "RaySandboxBackend",
    "RaySession",
    "SandboxHost",
]

DOCKER_RESOURCE = "docker"
# Each sandbox takes this much of a node's "docker" resource: only nodes that have
# one can host sandboxes, and the CPU and memory requests decide how many fit.
_DOCKER_SHARE = 0.001
# Environment the actors need to find the same sandbox settings as the caller.
_FORWARDED_ENV = ("DOCKER_HOST", "SSL_CERT_FILE")


class PlacementError(SandboxError):
    """No node of the Ray cluster can take the sandbox (CPUs, memory or Docker missing)."""

    status_code = 503  # the control plane's answer: try again when capacity frees up


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
