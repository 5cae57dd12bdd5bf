"""Sandbox lookups and creation shared by the routes: ownership, state, idempotency."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from openale.sandbox import Sandbox, SandboxSpec
from openale.sandbox.errors import (
    ImageNotFoundError,
    InvalidSpecError,
    SandboxNotFoundError,
    SandboxNotRunningError,
)
from openale.sandbox.ray.backend import PlacementError
from openale.server.auth import Principal, principal
from openale.server.backend import new_sandbox_id
from openale.server.errors import Conflict
from openale.server.state import AppState, app_state
from openale.server.store import SandboxRow

IDEMPOTENT_WAIT_S = 300.0  # how long a replay waits for the first request's create to finish


def owned_row(
    sandbox_id: str, request: Request, who: Annotated[Principal, Depends(principal)]
) -> SandboxRow:
    """The caller's sandbox, or 404: another owner's sandbox does not exist for them."""
    row = app_state(request).store.get_sandbox(sandbox_id)
    if row is None or row.owner != who.owner or row.state == "deleted":
        raise SandboxNotFoundError(f"no sandbox {sandbox_id!r}")
    return row


def running_sandbox(request: Request, row: Annotated[SandboxRow, Depends(owned_row)]) -> Sandbox:
    """A handle on the caller's running sandbox (409 in any other state)."""
    if row.state != "running":
        raise SandboxNotRunningError(
            f"sandbox {row.id} is {row.state}"
            + (f" ({row.error})" if row.error else "")
            + "; only running sandboxes accept this"
        )
    st = app_state(request)
    st.store.touch(row.id)
    return st.backend.get(row.id, row.sandbox_spec)


def start_sandbox(
    st: AppState, owner: str, spec: SandboxSpec, env: str | None = None
) -> SandboxRow:
    """Record, start and return a new sandbox (the row is removed again if the spec is refused)."""
    sandbox_id = new_sandbox_id()
    st.store.add_sandbox(sandbox_id, owner, spec, env)
    return launch(st, sandbox_id, owner, spec)


def launch(st: AppState, sandbox_id: str, owner: str, spec: SandboxSpec) -> SandboxRow:
    """Start the container of an already recorded (pending) sandbox."""
    started = time.monotonic()
    try:
        st.backend.create(sandbox_id, spec, owner)
    except (InvalidSpecError, ImageNotFoundError, PlacementError):
        # Bad input, or no node with room: nothing was started, so nothing may be left behind.
        st.store.forget_sandbox(sandbox_id)
        raise
    except Exception as e:
        st.store.set_state(sandbox_id, "failed", error=f"{type(e).__name__}: {e}")
        raise
    st.metrics.create_seconds.observe(time.monotonic() - started)
    st.store.set_state(sandbox_id, "running")
    return st.store.get_sandbox(sandbox_id)


def create_idempotent(
    st: AppState, owner: str, spec: SandboxSpec, env: str | None, key: str | None
) -> tuple[SandboxRow, bool]:
    """``(row, created)``: with a key already used by this owner, that key's sandbox."""
    if key is None:
        return start_sandbox(st, owner, spec, env), True
    sandbox_id = new_sandbox_id()
    st.store.add_sandbox(sandbox_id, owner, spec, env)
    existing = st.store.claim_key(owner, key, sandbox_id)
    if existing is None:
        return launch(st, sandbox_id, owner, spec), True
    st.store.forget_sandbox(sandbox_id)
    deadline = time.monotonic() + IDEMPOTENT_WAIT_S
    while True:
        row = st.store.get_sandbox(existing)
        if row is None:
            raise Conflict(
                f"the first request with Idempotency-Key {key!r} failed; retry to create anew"
            )
        if row.state != "pending" or time.monotonic() > deadline:
            return row, False
        time.sleep(0.1)
