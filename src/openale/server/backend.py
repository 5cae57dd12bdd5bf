"""Where the control plane's sandboxes run, behind one small seam.

``SandboxBackend`` is all the routes need: "create a sandbox for this spec",
"give me the ``Sandbox`` for this id", plus what reconciliation and snapshots
use. ``LocalBackend`` runs them on this host's engine through the embedded
``openale.sandbox`` API; ``RayBackend`` (``backend_ray.py``) places them on
the Docker nodes of a Ray cluster.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any, Protocol

from openale.sandbox import Sandbox, SandboxSettings, SandboxSpec, Snapshot
from openale.sandbox.audit import AuditLog
from openale.sandbox.commands import CommandHandle, OutputCallback
from openale.sandbox.engine import L_AUDIT, L_CREATED, L_DETACHED, L_OWNER, L_SERVER, L_SPEC, LABEL
from openale.sandbox.errors import SandboxError, SandboxNotFoundError, SessionClosedError
from openale.sandbox.runtime import CONTAINER_PREFIX, DockerRuntime, now
from openale.sandbox.snapshots import delete_snapshot, load_snapshot

# Every container this control plane starts carries the store's id and the
# owner, so a restarted server can tell its own containers from anyone else's.
L_SERVER_OWNER = "openale.server.owner"
# The Ray node a container was started from, so a shared engine still tells the nodes apart.
L_SERVER_NODE = "openale.server.node"


class SandboxBackend(Protocol):
    """The seam between the HTTP routes and wherever sandboxes actually run."""

    sessions: SessionTable
    """The open sessions of this backend's sandboxes (they live where the sandbox does)."""

    def create(self, sandbox_id: str, spec: SandboxSpec, owner: str) -> Sandbox: ...

    def get(self, sandbox_id: str, spec: SandboxSpec) -> Sandbox: ...

    def remove(self, sandbox_id: str) -> bool: ...

    def containers(self) -> dict[str, str]:
        """``{sandbox id: engine state}`` of every container labelled as this server's."""
        ...

    def snapshot(self, sandbox: Sandbox) -> Snapshot: ...

    def delete_snapshot(self, snapshot_id: str) -> None: ...

    def stream(self, sandbox: Any, cmd: str, on_output: OutputCallback, **kwargs: Any) -> Any:
        """Start a command whose output goes to ``on_output(stream, bytes)`` as it is read.

        Returns a handle with ``wait() -> CommandResult`` and ``kill()``.
        """
        ...

    def adopt(self, sandbox_id: str, spec: SandboxSpec) -> None:
        """Take over a running sandbox found at start-up (raise if that is impossible)."""
        ...

    def node_of(self, sandbox_id: str) -> str | None:
        """The cluster node hosting the sandbox, where that means anything."""
        ...

    def close(self) -> None:
        """Let go of in-process handles at shutdown; containers keep running."""
        ...


class SessionTable:
    """The open sessions of a backend's sandboxes, by (sandbox id, session id)."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def add(self, sandbox_id: str, session: Any) -> None:
        with self._lock:
            self._open[(sandbox_id, session.id)] = session

    def get(self, sandbox_id: str, session_id: str) -> Any:
        with self._lock:
            session = self._open.get((sandbox_id, session_id))
        if session is None:
            raise SessionNotFoundError(f"no session {session_id!r} in sandbox {sandbox_id}")
        if session.closed:
            raise SessionClosedError(f"session {session_id} has exited")
        return session

    def drop(self, sandbox_id: str, session_id: str) -> None:
        with self._lock:
            session = self._open.pop((sandbox_id, session_id), None)
        if session is None:
            raise SessionNotFoundError(f"no session {session_id!r} in sandbox {sandbox_id}")
        try:
            session.close()
        except SessionClosedError:
            pass  # its shell had already exited

    def forget(self, sandbox_id: str) -> None:
        """Drop the handles of one sandbox's sessions (it was removed or restarted)."""
        with self._lock:
            for key in [k for k in self._open if k[0] == sandbox_id]:
                self._open.pop(key)


def new_sandbox_id() -> str:
    return "sb-" + secrets.token_hex(6)


class LocalBackend:
    """Sandboxes on this host's container engine, one cached ``Sandbox`` handle per id."""

    def __init__(self, settings: SandboxSettings, server_id: str, node: str | None = None):
        self.settings = settings
        self.server_id = server_id
        self.node = node  # set when a Ray actor drives this backend on one node
        self.runtime = DockerRuntime(settings)
        self._handles: dict[str, Sandbox] = {}
        self.sessions = SessionTable()
        self._lock = threading.Lock()

    def create(self, sandbox_id: str, spec: SandboxSpec, owner: str) -> Sandbox:
        """Start a detached sandbox: it outlives this process, the store tracks it."""
        labels = {
            L_CREATED: now().isoformat(),
            L_SPEC: spec.model_dump_json(),
            L_OWNER: "",
            L_DETACHED: "1",
            L_AUDIT: str(self.settings.audit_dir),
            **spec.labels,
            L_SERVER: self.server_id,
            L_SERVER_OWNER: owner,
            **({L_SERVER_NODE: self.node} if self.node else {}),
        }
        audit = AuditLog(self.settings.audit_dir)
        started = time.monotonic()
        audit.record(sandbox_id, "lifecycle", "pending", detail={"spec": spec.model_dump()})
        try:
            container = self.runtime.create(sandbox_id, spec, labels)
        except SandboxError as e:
            audit.record(sandbox_id, "lifecycle", "failed", detail={"error": str(e)})
            raise
        audit.record(
            sandbox_id,
            "lifecycle",
            "running",
            duration_s=time.monotonic() - started,
            detail={"container": container, "server": self.server_id},
        )
        sb = Sandbox(
            sandbox_id, container, spec, detached=True, settings=self.settings, runtime=self.runtime
        )
        with self._lock:
            self._handles[sandbox_id] = sb
        return sb

    def get(self, sandbox_id: str, spec: SandboxSpec) -> Sandbox:
        with self._lock:
            sb = self._handles.get(sandbox_id)
            if sb is None:
                # Adopted after a restart: the container name is derived from the id.
                sb = Sandbox(
                    sandbox_id,
                    CONTAINER_PREFIX + sandbox_id,
                    spec,
                    detached=True,
                    settings=self.settings,
                    runtime=self.runtime,
                )
                self._handles[sandbox_id] = sb
            return sb

    def remove(self, sandbox_id: str) -> bool:
        with self._lock:
            sb = self._handles.pop(sandbox_id, None)
        self.sessions.forget(sandbox_id)
        if sb is not None:
            sb.sessions.close_all()
        removed = self.runtime.remove(CONTAINER_PREFIX + sandbox_id)
        if removed:
            AuditLog(self.settings.audit_dir).record(sandbox_id, "lifecycle", "deleted")
        return removed

    def containers(self) -> dict[str, str]:
        rows = self.runtime.api.containers(
            all=True, filters={"label": [LABEL, f"{L_SERVER}={self.server_id}"]}
        )
        return {c["Labels"][LABEL]: c["State"] for c in rows}

    # -- snapshots --------------------------------------------------------------------

    def snapshot(self, sandbox: Sandbox) -> Snapshot:
        return sandbox.snapshot()

    def delete_snapshot(self, snapshot_id: str) -> None:
        try:
            snap = load_snapshot(snapshot_id, self.settings)
        except SandboxError:
            return  # already gone from the engine
        delete_snapshot(snap, self.settings)

    # -- the rest of the seam ------------------------------------------------------------

    def stream(
        self, sandbox: Sandbox, cmd: str, on_output: OutputCallback, **kwargs: Any
    ) -> CommandHandle:
        return sandbox.commands.run(cmd, background=True, on_output=on_output, **kwargs)

    def adopt(self, sandbox_id: str, spec: SandboxSpec) -> None:
        """Nothing to do: the engine is local and ``get`` builds handles from the id."""

    def node_of(self, sandbox_id: str) -> str | None:
        return None

    def close(self) -> None:
        """Nothing held that outlives the process."""


class SessionNotFoundError(SandboxNotFoundError):
    """No open session with this id (never created, closed, or lost in a server restart)."""
