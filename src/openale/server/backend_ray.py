"""``RayBackend``: the control plane's sandboxes on the Docker nodes of a Ray cluster.

Each sandbox is a ``ServedSandboxHost`` actor that asks Ray for the sandbox's
CPUs and memory (see ``openale.sandbox.ray.backend``) and, on its node, starts
the container exactly as ``LocalBackend`` does: the server's id and the owner
as labels, plus the node's id, so reconciliation can find it again. The routes
get a ``RaySandbox``, which has the same surface as an embedded ``Sandbox``.

- Placement: a create that no node can take within ``ray_placement_timeout_s``
  raises ``PlacementError`` (503); the row is marked failed and no container is
  left. A fork is pinned to a node holding its snapshot image when only some do.
- Reconciliation: one ``NodeAgent`` per Docker node lists and removes this
  server's containers, so ``containers()`` and orphan removal cover every node.
- After a restart, a running sandbox is adopted by starting a new actor on the
  node that holds its container (hard node affinity, same CPU and memory
  request), so the node's accounting is right again. If that node is gone or
  full, the sandbox is marked failed and its container removed (``adopt`` raises
  and ``reconcile.sync`` does the rest). Sessions do not survive a restart.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from openale.sandbox.audit import AuditLog
from openale.sandbox.commands import OutputCallback
from openale.sandbox.errors import SandboxError, SandboxNotFoundError
from openale.sandbox.ray.backend import RaySandbox, RaySandboxBackend, _ray
from openale.sandbox.ray.host import SandboxHost, node_id, portable_settings
from openale.sandbox.runtime import CONTAINER_PREFIX, SNAPSHOT_REPOSITORY
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxSpec, Snapshot
from openale.server.backend import (
    L_SERVER,
    L_SERVER_NODE,
    LocalBackend,
    SessionTable,
)

log = logging.getLogger("openale.server")
AGENT_TIMEOUT_S = 60.0  # a node agent that does not answer in this long is left out of a pass


class ServedSandboxHost(SandboxHost):
    """A sandbox actor that starts (or adopts) a container the way ``LocalBackend`` does."""

    def start(
        self,
        spec: SandboxSpec,
        detach: bool,
        *,
        sandbox_id: str,
        owner: str,
        server_id: str,
        settings: dict[str, Any],
        adopt: bool = False,
    ) -> Any:
        local = LocalBackend(SandboxSettings(**settings), server_id, node=node_id())
        if adopt:
            local.runtime.inspect(sandbox_id)  # SandboxNotFoundError if it is not on this node
            return local.get(sandbox_id, spec)
        return local.create(sandbox_id, spec, owner)


class RayStreamingCommand:
    """The routes' streaming handle over a ``RayCommandStream``: output goes to ``on_output``.

    ``wait()`` reads the stream, so the callback runs on the waiting thread, as
    a ``CommandHandle``'s does.
    """

    def __init__(self, sandbox: RaySandbox, cmd: str, on_output: OutputCallback, **kw):
        self._stream = sandbox.commands.stream(cmd, **kw)
        self._on_output = on_output

    def wait(self) -> CommandResult:
        for kind, data in self._stream:
            if kind == "exit":
                return data
            self._on_output(kind, data)
        raise SandboxError(f"the output stream of {self._stream.cmd!r} ended without a result")

    def kill(self) -> None:
        self._stream.kill()


class RayBackend:
    """``SandboxBackend`` over ``RaySandboxBackend``: every sandbox on a Docker node of Ray."""

    def __init__(
        self,
        settings: SandboxSettings,
        server_id: str,
        *,
        address: str | None = None,
        placement_timeout_s: float = 60.0,
    ):
        self.settings = settings
        self.server_id = server_id
        self.ray = RaySandboxBackend(address, placement_timeout_s=placement_timeout_s)
        self._host_settings = portable_settings(settings)
        self.sessions = SessionTable()
        self._attach_lock = threading.Lock()

    # -- sandboxes ----------------------------------------------------------------------

    def create(self, sandbox_id: str, spec: SandboxSpec, owner: str) -> RaySandbox:
        """Place the sandbox by its CPUs and memory; ``PlacementError`` if nowhere fits."""
        node = None
        if spec.image.startswith(SNAPSHOT_REPOSITORY + ":"):
            node = self._image_node(spec.image)
        return self._start(sandbox_id, spec, owner=owner, node=node)

    def _start(
        self, sandbox_id: str, spec: SandboxSpec, *, owner: str, node: str | None, adopt=False
    ) -> RaySandbox:
        return self.ray.create(
            spec,
            detach=True,
            host=ServedSandboxHost,
            node_id=node,
            sandbox_id=sandbox_id,
            owner=owner,
            server_id=self.server_id,
            settings=self._host_settings,
            adopt=adopt,
        )

    def get(self, sandbox_id: str, spec: SandboxSpec) -> RaySandbox:
        try:
            return self.ray.get(sandbox_id)
        except SandboxNotFoundError:
            pass
        with self._attach_lock:  # two requests must not start two actors for one sandbox
            try:
                return self.ray.get(sandbox_id)
            except SandboxNotFoundError:
                return self._attach(sandbox_id, spec)

    def _attach(self, sandbox_id: str, spec: SandboxSpec) -> RaySandbox:
        """A new actor for a running container, on the node that holds it."""
        found = self._located().get(sandbox_id)
        if found is None:
            raise SandboxNotFoundError(f"no container of sandbox {sandbox_id} on any Ray node")
        node, _ = found
        return self._start(sandbox_id, spec, owner="", node=node, adopt=True)

    def adopt(self, sandbox_id: str, spec: SandboxSpec) -> None:
        self.get(sandbox_id, spec)

    def node_of(self, sandbox_id: str) -> str | None:
        try:
            return self.ray.get(sandbox_id).node_id
        except SandboxNotFoundError:
            return None

    def remove(self, sandbox_id: str) -> bool:
        self.sessions.forget(sandbox_id)
        try:
            handle = self.ray.get(sandbox_id)
        except SandboxNotFoundError:
            handle = None
        if handle is not None:
            try:
                handle.close()  # removes the container on its node and frees the CPUs
                return True
            except Exception as e:  # the actor or its node died: remove through the agent
                log.warning("closing %s through its actor failed: %s", sandbox_id, e)
        found = self._located().get(sandbox_id)
        if found is None:
            return False
        agents = self.ray.agents(self.settings)
        # Its own node's agent; if that node is gone, any agent whose engine still has it.
        order = [found[0]] if found[0] in agents else list(agents)
        removed = False
        for node in order:
            name = CONTAINER_PREFIX + sandbox_id
            removed = _ray().get(agents[node].remove_container.remote(name)) or removed
            if removed:
                break
        if removed:
            AuditLog(self.settings.audit_dir).record(sandbox_id, "lifecycle", "deleted")
        return removed

    def containers(self) -> dict[str, str]:
        return {sandbox_id: state for sandbox_id, (_, state) in self._located().items()}

    def _located(self) -> dict[str, tuple[str, str]]:
        """``{sandbox id: (node id, engine state)}`` of this server's containers on every node.

        A container names the node it was started from; engines shared by several
        nodes (one machine) report it once per node, and the label decides.
        """
        ray = _ray()
        agents = self.ray.agents(self.settings)
        refs = {
            node: agent.containers.remote([f"{L_SERVER}={self.server_id}"])
            for node, agent in agents.items()
        }
        found: dict[str, tuple[str, str]] = {}
        for node, ref in refs.items():
            try:
                rows = ray.get(ref, timeout=AGENT_TIMEOUT_S)
            except Exception as e:  # a dead node: its containers count as vanished
                log.warning("node %s did not list its containers: %s", node[:12], e)
                continue
            for row in rows:
                home = row["labels"].get(L_SERVER_NODE) or node
                if row["sandbox_id"] not in found or home == node:
                    found[row["sandbox_id"]] = (home, row["state"])
        return found

    def close(self) -> None:
        """Let go of every actor (and its CPUs); the containers keep running for a restart."""
        for sandbox in self.ray.list():
            try:
                sandbox.detach()
            except Exception as e:  # shutting down: one dead actor must not stop the rest
                log.warning("could not release the actor of %s: %s", sandbox.id, e)

    # -- commands, snapshots --------------------------------------------------------------

    def stream(
        self, sandbox: RaySandbox, cmd: str, on_output: OutputCallback, **kwargs: Any
    ) -> RayStreamingCommand:
        return RayStreamingCommand(sandbox, cmd, on_output, **kwargs)

    def snapshot(self, sandbox: RaySandbox) -> Snapshot:
        """Commit on the sandbox's node; forks go where that image is."""
        return sandbox.snapshot()

    def delete_snapshot(self, snapshot_id: str) -> None:
        image = f"{SNAPSHOT_REPOSITORY}:{snapshot_id}"
        agents = self.ray.agents(self.settings)
        _ray().get([agent.remove_image.remote(image) for agent in agents.values()])

    def _image_node(self, image: str) -> str | None:
        """A node holding ``image`` when only some nodes do (None: any node will do)."""
        agents = self.ray.agents(self.settings)
        nodes = list(agents)
        has = _ray().get([agents[n].has_image.remote(image) for n in nodes])
        holding = [n for n, ok in zip(nodes, has, strict=True) if ok]
        if not holding or len(holding) == len(nodes):
            return None
        return holding[0]


__all__ = ["RayBackend", "RayStreamingCommand", "ServedSandboxHost"]
