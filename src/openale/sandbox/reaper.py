"""Reaping: sandboxes past their idle TTL or deadline, and orphans, are removed.

Two ways in: a daemon thread in every process that creates sandboxes (period
``reap_interval_s``), and ``ale sandbox gc``. Both apply the same rules, read
only from container labels and audit-file mtimes, so any process can reap any
sandbox and nothing depends on the creator still running.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from openale.sandbox.audit import AuditLog
from openale.sandbox.engine import L_AUDIT, L_CREATED, L_OWNER, L_SERVER, L_SPEC, LABEL
from openale.sandbox.runtime import DockerRuntime
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import SandboxSpec

PENDING_GRACE_S = 120  # a container may sit in "created" this long while it starts


class GcItem(BaseModel):
    id: str
    reason: str
    removed: bool = False


def _start_time(pid: int) -> str:
    # Field 22 of /proc/PID/stat; the comm field before it may contain spaces.
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]


def owner_label() -> str:
    """``host:pid:starttime`` of this process; the start time guards against pid reuse."""
    pid = os.getpid()
    try:
        start = _start_time(pid)
    except OSError:
        start = "0"
    return f"{socket.gethostname()}:{pid}:{start}"


def owner_alive(owner: str) -> bool:
    """False only when the owner was a process on this host that no longer exists."""
    try:
        host, pid, start = owner.rsplit(":", 2)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True  # cannot see other hosts' processes
    try:
        return _start_time(int(pid)) == start
    except (OSError, ValueError):
        return False


def orphan_reason(summary: dict, audit: AuditLog, now: float) -> str | None:
    """Why this container should be removed, or None if it should live."""
    labels = summary["Labels"]
    sandbox_id = labels[LABEL]
    if labels.get(L_SERVER):
        # A control plane owns it: its activity is in the server's store, not in an
        # audit file here, and its own reaper and start-up reconciliation judge it.
        return None
    try:
        spec = SandboxSpec.model_validate_json(labels[L_SPEC])
        created = datetime.fromisoformat(labels[L_CREATED]).timestamp()
    except (KeyError, ValueError):
        return "labels are unreadable"
    state = summary["State"]
    owner = labels.get(L_OWNER)
    owner_gone = bool(owner) and not owner_alive(owner)
    past_deadline = bool(spec.deadline_s) and now - created > spec.deadline_s
    if state in ("exited", "dead"):
        # A live owner may still want to look at it; it closes its own.
        if owner and not owner_gone and not past_deadline:
            return None
        return f"not running ({state})"
    if state == "created" and now - created > PENDING_GRACE_S:
        return "never started"
    if past_deadline:
        return f"deadline of {spec.deadline_s:g}s passed"
    if spec.ttl_s:
        # The creator's audit directory knows the last activity, whatever ours
        # is; with no audit file in sight, idleness cannot be judged.
        if labels.get(L_AUDIT) and labels[L_AUDIT] != str(audit.directory):
            audit = AuditLog(Path(labels[L_AUDIT]))
        last = audit.last_active(sandbox_id)
        if last is not None and now - last.timestamp() > spec.ttl_s:
            return f"idle for {now - last.timestamp():.0f}s (ttl {spec.ttl_s:g}s)"
    if owner_gone:
        return f"owner process {owner} is gone"
    return None


def gc(settings: SandboxSettings | None = None, *, dry_run: bool = False) -> list[GcItem]:
    """Remove (or with ``dry_run`` only list) every sandbox that should not exist."""
    settings = settings or SandboxSettings()
    runtime = DockerRuntime(settings)
    audit = AuditLog(settings.audit_dir)
    now = time.time()
    items = []
    for summary in runtime.list():
        reason = orphan_reason(summary, audit, now)
        if reason is None:
            continue
        sandbox_id = summary["Labels"][LABEL]
        item = GcItem(id=sandbox_id, reason=reason)
        if not dry_run and runtime.remove(summary["Id"]):
            item.removed = True
            audit.record(sandbox_id, "lifecycle", "deleted", detail={"reaped": reason})
        items.append(item)
    return items


_reapers: dict[tuple, threading.Thread] = {}
_reapers_lock = threading.Lock()


def start_reaper(settings: SandboxSettings) -> None:
    """Start this process's reaper thread for these settings, once."""
    if settings.reap_interval_s <= 0:
        return
    key = (str(settings.audit_dir), settings.docker_host)
    with _reapers_lock:
        if key in _reapers and _reapers[key].is_alive():
            return

        def loop() -> None:
            while True:
                time.sleep(settings.reap_interval_s)
                try:
                    gc(settings)
                except Exception:  # the engine may be restarting; try again next period
                    pass

        thread = threading.Thread(target=loop, name="ale-reaper", daemon=True)
        thread.start()
        _reapers[key] = thread
