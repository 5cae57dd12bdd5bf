"""The actor side of the Ray backend: what runs on a node that has a container engine.

``SandboxHost`` owns one sandbox (an embedded ``Sandbox`` on its node's engine)
and everything that must stay next to it: its sessions, its streaming commands,
half-finished uploads. ``NodeAgent`` is one small actor pinned to each Docker
node, for what is about the node rather than one sandbox: listing and removing
labelled containers (reconciliation) and the images that live there (snapshots).

Bytes and results cross the boundary as plain values; typed errors cross as
themselves (Ray re-raises an actor's exception as an instance of its class).
"""

from __future__ import annotations

import queue
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from openale.sandbox.commands import CommandHandle
from openale.sandbox.engine import LABEL
from openale.sandbox.errors import SandboxError, SessionClosedError
from openale.sandbox.spec import SandboxSpec

ARCHIVE_CHUNK = 1 << 20  # bytes per streamed piece of a download


def node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def portable_settings(settings: Any) -> dict[str, Any]:
    """``SandboxSettings`` as plain values for another node (no control-plane credentials)."""
    return settings.model_dump(mode="json", exclude={"server", "token"})


class SandboxHost:
    """The actor behind one sandbox: owns the embedded ``Sandbox`` and its sessions.

    ``start`` makes the sandbox; subclasses (the control plane's) start it
    differently, with their own ids and labels, or adopt an existing container.
    """

    def __init__(self, spec: dict[str, Any], detach: bool, **start: Any):
        self.sessions: dict[str, Any] = {}
        self.commands: dict[str, CommandHandle] = {}
        self.killed: set[str] = set()
        self.uploads: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.sandbox = self.start(SandboxSpec(**spec), detach, **start)

    def start(self, spec: SandboxSpec, detach: bool) -> Any:
        from openale.sandbox.sandbox import Sandbox

        return Sandbox.create(spec, detach=detach)

    def describe(self) -> dict[str, Any]:
        import ray

        return {
            "sandbox_id": self.sandbox.id,
            "container": self.sandbox.container,
            "node_id": node_id(),
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

    def settings(self) -> dict[str, Any]:
        return portable_settings(self.sandbox.settings)

    # -- sessions -------------------------------------------------------------------

    def open_session(self, **kwargs: Any) -> str:
        session = self.sandbox.sessions.create(**kwargs)
        with self._lock:
            self.sessions[session.id] = session
        return session.id

    def session_call(self, session_id: str, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None or method not in ("run", "interrupt", "close", "closed"):
            raise SessionClosedError(f"no session {session_id!r} in sandbox {self.sandbox.id}")
        if method == "closed":
            return session.closed
        result = getattr(session, method)(*args, **kwargs)
        if method == "close":
            with self._lock:
                self.sessions.pop(session_id, None)
        return result

    def restart(self) -> None:
        """Restart the container; every shell dies with it, so the sessions go too."""
        self.sandbox.restart()
        with self._lock:
            self.sessions.clear()

    # -- streaming commands ------------------------------------------------------------

    def stream(self, command_id: str, cmd: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """A streaming generator: ``("start", id)``, ``("stdout"|"stderr", bytes)``…,
        then ``("exit", CommandResult)``. Call with ``.options(num_returns="streaming")``."""
        pieces: queue.SimpleQueue = queue.SimpleQueue()
        handle = self.sandbox.commands.run(
            cmd, background=True, on_output=lambda k, d: pieces.put((k, d)), **kwargs
        )
        with self._lock:
            self.commands[command_id] = handle
            killed_early = command_id in self.killed
        if killed_early:
            handle.kill()
        done = threading.Event()

        def pump() -> None:
            try:
                pieces.put(("exit", handle.wait()))
            except BaseException as e:  # handed to the caller as the generator's error
                pieces.put(("error", e))
            finally:
                done.set()

        threading.Thread(target=pump, name=f"ale-stream-{command_id}", daemon=True).start()
        try:
            yield "start", command_id
            while True:
                kind, data = pieces.get()
                if kind == "error":
                    raise data
                yield kind, data
                if kind == "exit":
                    return
        finally:
            if not done.is_set():  # the caller went away: so does the command
                handle.kill()
            with self._lock:
                self.commands.pop(command_id, None)
                self.killed.discard(command_id)

    def kill_command(self, command_id: str) -> None:
        """SIGKILL a streaming command's process tree (also if it has not started yet)."""
        with self._lock:
            handle = self.commands.get(command_id)
            if handle is None:
                self.killed.add(command_id)
        if handle is not None:
            handle.kill()

    # -- files the embedded API has no call for ------------------------------------------

    def stat(self, path: str) -> dict[str, Any] | None:
        return self.sandbox.runtime.stat(self.sandbox.container, path)

    def read_archive(self, path: str) -> Iterator[Any]:
        """A streaming generator: the stat of ``path``, then its tar in pieces."""
        chunks, stat = self.sandbox.runtime.get_archive(self.sandbox.container, path)
        yield stat
        pending = b""
        for chunk in chunks:
            pending += chunk
            if len(pending) >= ARCHIVE_CHUNK:
                yield pending
                pending = b""
        if pending:
            yield pending

    def audit_file(
        self, action: str, path: str, elapsed_s: float, bytes_in: int | None, bytes_out: int | None
    ) -> None:
        started = time.monotonic() - elapsed_s
        self.sandbox.audit_file(
            action, path, started=started, bytes_in=bytes_in, bytes_out=bytes_out
        )

    def upload_open(self) -> str:
        """Start an upload spooled on this node; ``upload_put`` sends it into the sandbox."""
        upload_id = secrets.token_hex(6)
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        with self._lock:
            self.uploads[upload_id] = spool
        return upload_id

    def upload_write(self, upload_id: str, data: bytes) -> None:
        self._upload(upload_id).write(data)

    def upload_put(self, upload_id: str, directory: str) -> bool:
        """Extract the uploaded tar under ``directory`` and drop the upload."""
        with self._lock:
            spool = self.uploads.pop(upload_id, None)
        if spool is None:
            raise SandboxError(f"no upload {upload_id!r} in sandbox {self.sandbox.id}")
        try:
            spool.seek(0)
            return self.sandbox.runtime.put_archive(self.sandbox.container, directory, spool)
        finally:
            spool.close()

    def _upload(self, upload_id: str) -> Any:
        with self._lock:
            spool = self.uploads.get(upload_id)
        if spool is None:
            raise SandboxError(f"no upload {upload_id!r} in sandbox {self.sandbox.id}")
        return spool

    def close(self) -> None:
        self.sandbox.close()


class NodeAgent:
    """One per Docker node: its labelled containers and its images."""

    def __init__(self, settings: dict[str, Any] | None = None):
        from openale.sandbox.runtime import DockerRuntime
        from openale.sandbox.settings import SandboxSettings

        self.runtime = DockerRuntime(SandboxSettings(**(settings or {})))

    def node(self) -> str:
        return node_id()

    def containers(self, labels: list[str]) -> list[dict[str, Any]]:
        """openale containers that carry every ``labels`` filter (``key`` or ``key=value``)."""
        rows = self.runtime.api.containers(all=True, filters={"label": [LABEL, *labels]})
        return [
            {"sandbox_id": c["Labels"][LABEL], "state": c["State"], "labels": c["Labels"]}
            for c in rows
        ]

    def remove_container(self, container: str) -> bool:
        return self.runtime.remove(container)

    def has_image(self, image: str) -> bool:
        try:
            self.runtime.api.inspect_image(image)
            return True
        except Exception:  # docker.errors.ImageNotFound, or a malformed reference
            return False

    def remove_image(self, image: str) -> bool:
        return self.runtime.remove_image(image)
