"""Keeping the store and the engine in agreement: at start-up and on every reaper tick.

- A sandbox the store thinks is alive but whose container vanished is ``failed``.
- A running container the store knows is adopted (``running``); an exited one is ``stopped``.
  The backend takes it over (``adopt``: on Ray, a new actor on the node holding
  it); if it cannot, the sandbox is ``failed`` and its container removed.
- A container labelled as this server's but unknown to the store (or already
  deleted/failed there) is an orphan and is removed.
- A sandbox past its deadline, or idle longer than its TTL, is removed (``deleted``).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from pydantic import BaseModel

from openale.sandbox.audit import AuditLog
from openale.server.state import AppState
from openale.server.tables import SandboxRow, as_utc

log = logging.getLogger("openale.server")

LIVE_ENGINE_STATES = ("running", "paused", "restarting")
KEPT_STATES = ("pending", "running", "stopped")


class SyncReport(BaseModel):
    adopted: list[str] = []
    failed: list[str] = []
    stopped: list[str] = []
    orphans_removed: list[str] = []
    reaped: list[str] = []


def _idle_since(row: SandboxRow, audit: AuditLog) -> datetime:
    last = as_utc(row.last_active_at)
    engine_side = audit.last_active(row.id)  # long commands touch it while they run
    return max(last, engine_side) if engine_side else last


def sync(st: AppState, *, startup: bool = False) -> SyncReport:
    """One pass of reconciliation (and, unless ``startup``, TTL/deadline reaping)."""
    report = SyncReport()
    containers = st.backend.containers()
    rows = {r.id: r for r in st.store.list_sandboxes(states=KEPT_STATES)}
    audit = AuditLog(st.settings.sandbox.audit_dir)
    now = datetime.now(UTC)
    for row in rows.values():
        engine_state = containers.get(row.id)
        if engine_state is None:
            if row.state == "pending" and not startup:
                continue  # being created right now
            st.store.set_state(row.id, "failed", error="the container vanished from the engine")
            report.failed.append(row.id)
            continue
        if row.state == "pending" and startup:
            # The server died in the middle of creating it: nobody got its id.
            st.backend.remove(row.id)
            st.store.set_state(row.id, "failed", error="the server stopped while creating it")
            report.failed.append(row.id)
            continue
        if engine_state in LIVE_ENGINE_STATES and startup:
            try:
                # On Ray: a new actor on the node holding the container.
                st.backend.adopt(row.id, row.sandbox_spec)
            except Exception as e:
                _give_up(st, row.id, f"could not take it over after a restart: {e}")
                report.failed.append(row.id)
                continue
        if engine_state in LIVE_ENGINE_STATES and row.state != "running" and startup:
            st.store.set_state(row.id, "running")
            report.adopted.append(row.id)
        elif engine_state in LIVE_ENGINE_STATES and startup:
            report.adopted.append(row.id)
        elif engine_state in ("exited", "dead") and row.state == "running":
            st.store.set_state(row.id, "stopped", error=f"the container {engine_state}")
            report.stopped.append(row.id)
        if not startup and row.state != "pending":
            reason = _reap_reason(row, audit, now)
            if reason:
                st.backend.remove(row.id)
                st.store.set_state(row.id, "deleted", error=reason)
                st.store.add_audit(
                    owner=row.owner,
                    token_id=None,
                    method="-",
                    route="reaper",
                    op="reap",
                    sandbox=row.id,
                    status_code=0,
                    detail={"reason": reason},
                )
                report.reaped.append(row.id)
    for sandbox_id in containers:
        if sandbox_id not in rows:
            st.backend.remove(sandbox_id)
            report.orphans_removed.append(sandbox_id)
    return report


def _give_up(st: AppState, sandbox_id: str, error: str) -> None:
    """Mark a sandbox failed and remove what is left of its container."""
    st.store.set_state(sandbox_id, "failed", error=error)
    try:
        st.backend.remove(sandbox_id)
    except Exception:  # the next pass removes it as an orphan
        log.exception("could not remove the container of %s", sandbox_id)


def _reap_reason(row: SandboxRow, audit: AuditLog, now: datetime) -> str | None:
    deadline = as_utc(row.deadline_at)
    if deadline is not None and now >= deadline:
        return "deadline passed"
    ttl = row.sandbox_spec.ttl_s
    if ttl:
        idle = (now - _idle_since(row, audit)).total_seconds()
        if idle > ttl:
            return f"idle for {idle:.0f}s (ttl {ttl:g}s)"
    return None


class Reaper:
    """A daemon thread running ``sync`` every ``interval_s`` until stopped."""

    def __init__(self, st: AppState, interval_s: float):
        self._st = st
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ale-server-reaper", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                report = sync(self._st)
                if report.reaped or report.failed or report.orphans_removed:
                    log.info("reaper: %s", report.model_dump(exclude_defaults=True))
            except Exception:  # the engine may be restarting; the next tick retries
                log.exception("reaper pass failed")
