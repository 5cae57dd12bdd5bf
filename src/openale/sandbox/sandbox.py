"""``Sandbox``: an isolated container that agents act in, used as a library.

    with Sandbox.create(SandboxSpec(image="openale/toolbox:bookworm")) as sb:
        sb.commands.run("echo hi").stdout          # one-shot process
        shell = sb.sessions.create()               # persistent bash
        shell.run("cd /tmp && export X=1")
        sb.files.write("notes.txt", "hello")

This class is the one core: ``AsyncSandbox`` runs the same methods in worker
threads, and the control plane serves them over HTTP. With ``server=`` (or
``ALE_SERVER``) the same calls return a ``RemoteSandbox``; both are
``AnySandbox``.
"""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from openale.sandbox import terminal
from openale.sandbox.audit import AuditLog
from openale.sandbox.commands import Commands
from openale.sandbox.engine import (
    L_AUDIT,
    L_CREATED,
    L_DETACHED,
    L_OWNER,
    L_SNAPSHOT,
    L_SNAPSHOT_SOURCE,
    L_SPEC,
)
from openale.sandbox.errors import SandboxError, SandboxNotRunningError
from openale.sandbox.files import Files
from openale.sandbox.info import info_from_inspect, info_from_summary
from openale.sandbox.owned import disown, own
from openale.sandbox.protocol import AnySandbox
from openale.sandbox.reaper import owner_label, start_reaper
from openale.sandbox.runtime import SNAPSHOT_REPOSITORY, DockerRuntime, now
from openale.sandbox.session import Sessions
from openale.sandbox.settings import SandboxSettings, is_remote
from openale.sandbox.snapshots import load_snapshot
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot, as_spec


class Sandbox:
    """A running sandbox. Build one with ``create``, ``attach`` or ``fork``."""

    def __init__(
        self,
        sandbox_id: str,
        container: str,
        spec: SandboxSpec,
        *,
        detached: bool,
        settings: SandboxSettings,
        runtime: DockerRuntime | None = None,
    ):
        self.id = sandbox_id
        self.container = container
        self.spec = spec
        self.detached = detached
        self.settings = settings
        self.runtime = runtime or DockerRuntime(settings)
        self.audit = AuditLog(settings.audit_dir)
        self.commands = Commands(self)
        self.sessions = Sessions(self)
        self.files = Files(self)
        self._oom_seen: int | None = None
        self._lock = threading.Lock()
        self.closed = False
        own(self)

    # -- construction -----------------------------------------------------------------

    @classmethod
    def create(
        cls,
        spec: SandboxSpec | dict | None = None,
        *,
        detach: bool = False,
        settings: SandboxSettings | None = None,
        server: str | None = None,
        token: str | None = None,
        **fields,
    ) -> AnySandbox:
        """Start a sandbox. ``detach=True`` lets it outlive this process (until TTL or ``rm``).

        Spec fields can be given as keywords: ``Sandbox.create(image=..., memory="512m")``.
        With ``server=URL`` (or ``ALE_SERVER``) the sandbox runs on that control
        plane, authenticated by ``token`` (or ``ALE_TOKEN``), behind the same API.
        """
        if is_remote(server, settings):
            from openale.sandbox.remote import RemoteSandbox

            return RemoteSandbox.create(
                spec, detach=detach, server=server, token=token, settings=settings, **fields
            )
        spec = as_spec({**as_spec(spec).model_dump(), **fields} if fields else spec)
        settings = settings or SandboxSettings()
        runtime = DockerRuntime(settings)
        sandbox_id = "sb-" + secrets.token_hex(6)
        started = time.monotonic()
        labels = {
            L_CREATED: now().isoformat(),
            L_SPEC: spec.model_dump_json(),
            L_OWNER: "" if detach else owner_label(),
            L_DETACHED: "1" if detach else "0",
            L_AUDIT: str(settings.audit_dir),
            **spec.labels,
        }
        audit = AuditLog(settings.audit_dir)
        audit.record(sandbox_id, "lifecycle", "pending", detail={"spec": spec.model_dump()})
        try:
            container = runtime.create(sandbox_id, spec, labels)
        except SandboxError as e:
            audit.record(sandbox_id, "lifecycle", "failed", detail={"error": str(e)})
            raise
        audit.record(
            sandbox_id,
            "lifecycle",
            "running",
            duration_s=time.monotonic() - started,
            detail={"container": container},
        )
        start_reaper(settings)
        return cls(sandbox_id, container, spec, detached=detach, settings=settings, runtime=runtime)

    @classmethod
    def attach(
        cls,
        sandbox_id: str,
        settings: SandboxSettings | None = None,
        *,
        server: str | None = None,
        token: str | None = None,
    ) -> AnySandbox:
        """A handle on an existing sandbox, from any process (or on a control plane)."""
        if is_remote(server, settings):
            from openale.sandbox.remote import RemoteSandbox

            return RemoteSandbox.attach(sandbox_id, server=server, token=token, settings=settings)
        settings = settings or SandboxSettings()
        runtime = DockerRuntime(settings)
        info = runtime.inspect(sandbox_id)
        labels = info["Config"]["Labels"]
        sb = cls(
            sandbox_id,
            info["Id"],
            SandboxSpec.model_validate_json(labels[L_SPEC]),
            detached=True,
            settings=settings,
            runtime=runtime,
        )
        sb.audit.record(sandbox_id, "lifecycle", "attach")
        return sb

    @classmethod
    def list(
        cls,
        settings: SandboxSettings | None = None,
        *,
        server: str | None = None,
        token: str | None = None,
    ) -> list[SandboxInfo]:
        if is_remote(server, settings):
            from openale.sandbox.remote import RemoteSandbox

            return RemoteSandbox.list(server=server, token=token, settings=settings)
        settings = settings or SandboxSettings()
        runtime = DockerRuntime(settings)
        audit = AuditLog(settings.audit_dir)
        return sorted(
            (info_from_summary(c, audit) for c in runtime.list()), key=lambda i: i.created_at
        )

    @classmethod
    def fork(
        cls,
        snapshot: Snapshot | str,
        n: int = 1,
        *,
        detach: bool = False,
        settings: SandboxSettings | None = None,
        server: str | None = None,
        token: str | None = None,
        **overrides,
    ) -> list[AnySandbox]:
        """Start ``n`` sandboxes from a snapshot, in parallel."""
        if n < 1:
            raise ValueError("n must be at least 1")
        if is_remote(server, settings):
            from openale.sandbox.remote import RemoteSandbox

            return RemoteSandbox.fork(
                snapshot,
                n,
                detach=detach,
                server=server,
                token=token,
                settings=settings,
                **overrides,
            )
        settings = settings or SandboxSettings()
        if isinstance(snapshot, str):
            snapshot = load_snapshot(snapshot, settings)
        spec = snapshot.spec.model_copy(update={"image": snapshot.image, **overrides})
        with ThreadPoolExecutor(max_workers=min(n, 16)) as pool:
            futures = [
                pool.submit(cls.create, spec, detach=detach, settings=settings) for _ in range(n)
            ]
            forks, errors = [], []
            for f in futures:
                try:
                    forks.append(f.result())
                except SandboxError as e:
                    errors.append(e)
        if errors:
            for sb in forks:
                sb.close()
            raise errors[0]
        for sb in forks:
            sb.audit.record(sb.id, "lifecycle", "forked", detail={"snapshot": snapshot.id})
        return forks

    # -- lifecycle --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Commit the filesystem to an image (volumes of ``read_only_root`` are not included)."""
        self.ensure_running()
        snap_id = "snap-" + secrets.token_hex(6)
        started = time.monotonic()
        created = now()
        self.runtime.commit(
            self.container,
            snap_id,
            {
                L_SNAPSHOT: snap_id,
                L_SNAPSHOT_SOURCE: self.id,
                L_CREATED: created.isoformat(),
                L_SPEC: self.spec.model_dump_json(),
            },
        )
        self.audit.record(
            self.id,
            "lifecycle",
            "snapshot",
            duration_s=time.monotonic() - started,
            detail={"snapshot": snap_id},
        )
        return Snapshot(
            id=snap_id,
            image=f"{SNAPSHOT_REPOSITORY}:{snap_id}",
            source_sandbox=self.id,
            created_at=created,
            spec=self.spec,
        )

    def info(self) -> SandboxInfo:
        return info_from_inspect(self.runtime.inspect(self.id), self.audit)

    def attach_shell(self) -> int | None:
        """A shell on this process's terminal or pipes until it exits (see ``terminal``)."""
        return terminal.attach_shell(self)

    def ensure_running(self) -> None:
        if self.closed:
            raise SandboxNotRunningError(f"sandbox {self.id} is closed")

    def close(self) -> None:
        """Stop and delete the sandbox. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.sessions.close_all()
        if self.runtime.remove(self.container):
            self.audit.record(self.id, "lifecycle", "deleted")
        disown(self)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sandbox({self.id!r}, image={self.spec.image!r})"

    # -- shared by the namespaces -----------------------------------------------------

    def finish_command(self, kind: str, cmd: str, result: CommandResult, **detail) -> CommandResult:
        """Flag OOM kills and write the audit record of a finished command."""
        if result.exit_code == 137:
            result.oom_killed = self._oom_killed_since_last_check()
        self.audit.record(
            self.id,
            "command",
            kind,
            exit_code=result.exit_code,
            duration_s=result.duration_s,
            bytes_in=len(cmd.encode()),
            bytes_out=len(result.stdout) + len(result.stderr) + len(result.output),
            detail={
                "cmd": cmd,
                "timed_out": result.timed_out,
                "oom_killed": result.oom_killed,
                "truncated": result.truncated,
                **({"error": result.error} if result.error else {}),
                **detail,
            },
        )
        return result

    def touch(self) -> None:
        """Record activity for the idle-TTL reaper."""
        self.audit.touch(self.id)

    def audit_file(
        self,
        action: str,
        path: str,
        *,
        started: float,
        bytes_in: int | None = None,
        bytes_out: int | None = None,
    ) -> None:
        self.audit.record(
            self.id,
            "file",
            action,
            bytes_in=bytes_in,
            bytes_out=bytes_out,
            duration_s=time.monotonic() - started,
            detail={"path": path},
        )

    def restart(self) -> None:
        """Kill every process in the sandbox (sessions included) and start it again.

        The filesystem is kept. This is the way out when a runaway process tree
        (a fork bomb) holds every process slot, so nothing else can start.
        """
        started = time.monotonic()
        self.ensure_running()
        self.sessions.close_all()
        self.runtime.restart(self.container)
        self.audit.record(self.id, "lifecycle", "restarted", duration_s=time.monotonic() - started)

    def recover_from_exhaustion(self) -> str:
        """Restart the sandbox when nothing can be started in it to stop a command."""
        current = self.runtime.pids_current(self.container)
        self.restart()
        reason = (
            f"pids limit exhausted ({current}/{self.spec.pids} processes)"
            if current is not None and current >= self.spec.pids - 2
            else "the command could not be stopped"
        )
        note = f"{reason}; the sandbox was restarted to recover (files kept, processes lost)"
        self.audit.record(self.id, "lifecycle", "recovered", detail={"reason": note})
        return note

    def _oom_killed_since_last_check(self) -> bool:
        count = self.runtime.oom_kills(self.container)
        if count is None:
            return False
        with self._lock:
            seen, self._oom_seen = self._oom_seen or 0, count
        return count > seen
