"""``Sandbox``: an isolated container that agents act in, used as a library.

    with Sandbox.create(SandboxSpec(image="openale/toolbox:bookworm")) as sb:
        sb.commands.run("echo hi").stdout          # one-shot process
        shell = sb.sessions.create()               # persistent bash
        shell.run("cd /tmp && export X=1")
        sb.files.write("notes.txt", "hello")

This class is the one core: ``AsyncSandbox`` runs the same methods in worker
threads, and the control plane serves them over HTTP.
"""

from __future__ import annotations

import atexit
import secrets
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING

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
    LABEL,
)
from openale.sandbox.errors import SandboxError, SandboxNotRunningError
from openale.sandbox.files import Files
from openale.sandbox.reaper import owner_label, start_reaper
from openale.sandbox.runtime import SNAPSHOT_REPOSITORY, DockerRuntime, now
from openale.sandbox.session import BashSession
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import (
    CommandResult,
    SandboxInfo,
    SandboxSpec,
    SandboxStatus,
    Snapshot,
    as_spec,
)

if TYPE_CHECKING:
    from openale.sandbox.remote import RemoteSandbox

_live: weakref.WeakSet[Sandbox] = weakref.WeakSet()


def _remote(server: str | None, settings: SandboxSettings | None) -> bool:
    """Whether a call goes to a control plane: ``server=`` or ``ALE_SERVER`` is set."""
    return bool(server or (settings or SandboxSettings()).server)


@atexit.register
def _close_owned() -> None:
    for sb in list(_live):
        if not sb.detached:
            try:
                sb.close()
            except Exception:  # the engine may already be gone at interpreter exit
                pass


class Sessions:
    """``sb.sessions.create()``: persistent bash shells in the sandbox."""

    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox
        self._open: list[Session] = []

    def create(
        self, *, cwd: str | None = None, env: dict[str, str] | None = None, user: str | None = None
    ) -> Session:
        self._sb.ensure_running()
        started = time.monotonic()
        session = Session(
            self._sb,
            BashSession(
                self._sb.runtime,
                self._sb.container,
                user=user or self._sb.spec.user,
                cwd=cwd,
                env=env,
                max_output_bytes=self._sb.settings.max_output_bytes,
                heartbeat=self._sb.touch,
            ),
        )
        self._open.append(session)
        self._sb.audit.record(
            self._sb.id,
            "session",
            "create",
            detail={"session": session.id},
            duration_s=time.monotonic() - started,
        )
        return session

    def close_all(self) -> None:
        for s in self._open:
            s.close()
        self._open.clear()


class Session:
    """A persistent shell. ``run`` returns ``CommandResult`` with ``output`` (stdout+stderr)."""

    def __init__(self, sandbox: Sandbox, shell: BashSession):
        self._sb = sandbox
        self._shell = shell
        self.id = shell.id

    @property
    def closed(self) -> bool:
        return self._shell.closed

    def run(self, cmd: str, timeout: float | None = 120.0) -> CommandResult:
        result = self._shell.run(cmd, timeout=timeout)
        if self._shell.stuck:
            # Not even a helper process could start to stop the command: the
            # sandbox is out of pids. Recovering restarts it and ends this shell.
            result.error = self._sb.recover_from_exhaustion()
        elif result.timed_out and self._shell.closed:
            result.error = "the command could not be stopped, so its shell was killed"
        return self._sb.finish_command("session", cmd, result, session=self.id)

    def interrupt(self) -> None:
        self._shell.interrupt()

    def close(self) -> None:
        self._shell.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
        _live.add(self)

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
    ) -> Sandbox | RemoteSandbox:
        """Start a sandbox. ``detach=True`` lets it outlive this process (until TTL or ``rm``).

        Spec fields can be given as keywords: ``Sandbox.create(image=..., memory="512m")``.
        With ``server=URL`` (or ``ALE_SERVER``) the sandbox runs on that control
        plane, authenticated by ``token`` (or ``ALE_TOKEN``), behind the same API.
        """
        if _remote(server, settings):
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
    ) -> Sandbox | RemoteSandbox:
        """A handle on an existing sandbox, from any process (or on a control plane)."""
        if _remote(server, settings):
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
        if _remote(server, settings):
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
    ) -> list[Sandbox] | list[RemoteSandbox]:
        """Start ``n`` sandboxes from a snapshot, in parallel."""
        if n < 1:
            raise ValueError("n must be at least 1")
        if _remote(server, settings):
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
        _live.discard(self)

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


def _status(state: str, exit_code: int | None, oom: bool = False) -> SandboxStatus:
    if state in ("created", "restarting"):
        return "pending"
    if state in ("running", "paused"):
        return "running"
    if state == "exited" and exit_code in (0, 137, 143) and not oom:
        return "stopped"
    return "failed"


def _info(
    sandbox_id: str, labels: dict[str, str], status: SandboxStatus, audit: AuditLog
) -> SandboxInfo:
    spec = SandboxSpec.model_validate_json(labels[L_SPEC])
    return SandboxInfo(
        id=sandbox_id,
        status=status,
        image=spec.image,
        created_at=datetime.fromisoformat(labels[L_CREATED]),
        last_active_at=audit.last_active(sandbox_id),
        ttl_s=spec.ttl_s,
        deadline_s=spec.deadline_s,
        detached=labels.get(L_DETACHED) == "1",
        owner=labels.get(L_OWNER) or None,
        spec=spec,
    )


def info_from_summary(summary: dict, audit: AuditLog) -> SandboxInfo:
    """From a ``GET /containers/json`` row (no per-container inspect needed)."""
    labels = summary["Labels"]
    exit_code = None
    if summary["State"] == "exited" and "(" in summary.get("Status", ""):
        exit_code = int(summary["Status"].split("(")[1].split(")")[0])
    return _info(labels[LABEL], labels, _status(summary["State"], exit_code), audit)


def info_from_inspect(inspect: dict, audit: AuditLog) -> SandboxInfo:
    labels = inspect["Config"]["Labels"]
    state = inspect["State"]
    return _info(
        labels[LABEL],
        labels,
        _status(state["Status"], state.get("ExitCode"), state.get("OOMKilled", False)),
        audit,
    )


def load_snapshot(snapshot_id: str, settings: SandboxSettings | None = None) -> Snapshot:
    runtime = DockerRuntime(settings or SandboxSettings())
    image = snapshot_id if ":" in snapshot_id else f"{SNAPSHOT_REPOSITORY}:{snapshot_id}"
    labels = runtime.image_labels(image)
    if L_SNAPSHOT not in labels:
        raise SandboxError(f"{image} is not an openale snapshot")
    return Snapshot(
        id=labels[L_SNAPSHOT],
        image=image,
        source_sandbox=labels[L_SNAPSHOT_SOURCE],
        created_at=datetime.fromisoformat(labels[L_CREATED]),
        spec=SandboxSpec.model_validate_json(labels[L_SPEC]),
    )


def delete_snapshot(snapshot: Snapshot | str, settings: SandboxSettings | None = None) -> bool:
    """Remove a snapshot's image; False if it was already gone."""
    runtime = DockerRuntime(settings or SandboxSettings())
    image = snapshot.image if isinstance(snapshot, Snapshot) else load_snapshot(snapshot).image
    return runtime.remove_image(image)
