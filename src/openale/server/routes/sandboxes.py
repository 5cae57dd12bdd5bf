"""Routes for sandboxes, one-shot commands, sessions, snapshots and forks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import Field

from openale.sandbox import CommandResult, Sandbox, SandboxInfo, SandboxSpec, Snapshot
from openale.sandbox.errors import InvalidSpecError, SandboxError, SandboxNotFoundError
from openale.sandbox.remote.wire import (
    CommandRequest,
    CreateSandboxRequest,
    ForkRequest,
    SessionCreated,
    SessionCreateRequest,
    SessionRunRequest,
)
from openale.server.audit import note
from openale.server.auth import Principal, principal
from openale.server.errors import ERROR_RESPONSES, Forbidden
from openale.server.lifecycle import create_idempotent, owned_row, running_sandbox, start_sandbox
from openale.server.schemas import ADMIN_SCOPE
from openale.server.state import AppState, app_state
from openale.server.store import SandboxRow

router = APIRouter(prefix="/v1", tags=["sandboxes"], responses=ERROR_RESPONSES)


class PlacedSandboxInfo(SandboxInfo):
    """``SandboxInfo`` as the control plane serves it: also where the sandbox runs."""

    node: str | None = Field(
        None, description="id of the Ray node hosting the sandbox (Ray backend; else null)"
    )


@router.post("/sandboxes", status_code=201, response_model=PlacedSandboxInfo)
def create_sandbox(
    body: CreateSandboxRequest,
    request: Request,
    response: Response,
    who: Annotated[Principal, Depends(principal)],
    idempotency_key: Annotated[str | None, Header(max_length=256)] = None,
) -> SandboxInfo:
    """Start a sandbox. Replaying an ``Idempotency-Key`` returns the first one (200)."""
    from openale.sandbox.envhub import ENV_PREFIX, check_image_access

    st = app_state(request)
    spec = body.spec
    env = body.env
    if spec.image.startswith(ENV_PREFIX):
        # Resolved here, for this owner: the engine would resolve it in the host's own hub.
        if env:
            raise InvalidSpecError(
                "give the environment once: either 'env' or spec.image 'env:...'"
            )
        env = spec.image.removeprefix(ENV_PREFIX)
    if env:
        spec = spec.model_copy(update={"image": st.env_hub().resolve(env, owner=who.owner)})
    # Another owner's EnvHub image is refused by its tag too, as if it did not exist.
    check_image_access(spec.image, who.owner)
    row, created = create_idempotent(st, who.owner, spec, env, idempotency_key)
    if not created:
        response.status_code = 200
    node = st.backend.node_of(row.id)
    note(request, op="create" if created else "create.replay", sandbox=row.id)
    if node:
        note(request, detail={"node": node})
    return placed(st, row)


def placed(st: AppState, row: SandboxRow) -> PlacedSandboxInfo:
    """The row's ``SandboxInfo`` plus the node hosting it (Ray backend)."""
    return PlacedSandboxInfo.model_validate(
        {**row.info().model_dump(), "node": st.backend.node_of(row.id)}
    )


@router.get("/sandboxes", response_model=list[PlacedSandboxInfo])
def list_sandboxes(
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    all: Annotated[bool, Query(description="everyone's sandboxes (admin scope)")] = False,
) -> list[PlacedSandboxInfo]:
    if all and not who.admin:
        raise Forbidden(f"?all=true needs a token with the {ADMIN_SCOPE!r} scope")
    states = ("pending", "running", "stopped", "failed")
    st = app_state(request)
    rows = st.store.list_sandboxes(None if all else who.owner, states)
    return [placed(st, r) for r in rows]


@router.get("/sandboxes/{sandbox_id}", response_model=PlacedSandboxInfo)
def get_sandbox(
    request: Request, row: Annotated[SandboxRow, Depends(owned_row)]
) -> PlacedSandboxInfo:
    return placed(app_state(request), row)


@router.delete("/sandboxes/{sandbox_id}", status_code=204)
def delete_sandbox(request: Request, row: Annotated[SandboxRow, Depends(owned_row)]) -> Response:
    st = app_state(request)
    st.backend.remove(row.id)
    st.store.set_state(row.id, "deleted")
    note(request, op="delete")
    return Response(status_code=204)


@router.post("/sandboxes/{sandbox_id}/restart", response_model=PlacedSandboxInfo)
def restart_sandbox(
    request: Request, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> PlacedSandboxInfo:
    """Kill every process (sessions included) and start the sandbox again; files are kept."""
    st = app_state(request)
    sb.restart()
    st.backend.sessions.forget(sb.id)
    note(request, op="restart")
    return placed(st, st.store.get_sandbox(sb.id))


# -- commands ------------------------------------------------------------------------


@router.post("/sandboxes/{sandbox_id}/commands", response_model=CommandResult)
def run_command(
    body: CommandRequest, request: Request, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> CommandResult:
    """Run ``sh -c cmd`` to completion; stdout and stderr apart."""
    metrics = app_state(request).metrics
    metrics.commands.labels(kind="exec").inc()
    try:
        result = sb.commands.run(
            body.cmd, timeout=body.timeout, env=body.env, cwd=body.cwd, user=body.user
        )
    except SandboxError:
        metrics.command_errors.labels(kind="exec").inc()
        raise
    count_failure(request, "exec", result)
    note(request, op="command", exit_code=result.exit_code, detail={"cmd": body.cmd})
    return result


def count_failure(request: Request, kind: str, result: CommandResult) -> None:
    if result.timed_out or result.error or result.exit_code is None:
        app_state(request).metrics.command_errors.labels(kind=kind).inc()


# -- sessions ------------------------------------------------------------------------


@router.post("/sandboxes/{sandbox_id}/sessions", response_model=SessionCreated)
def create_session(
    request: Request,
    sb: Annotated[Sandbox, Depends(running_sandbox)],
    body: SessionCreateRequest | None = None,
) -> SessionCreated:
    """Open a persistent bash shell: ``cd``, variables and jobs persist between runs."""
    body = body or SessionCreateRequest()
    session = sb.sessions.create(cwd=body.cwd, env=body.env, user=body.user)
    app_state(request).backend.sessions.add(sb.id, session)
    note(request, op="session.create", detail={"session": session.id})
    return SessionCreated(session_id=session.id)


@router.post("/sandboxes/{sandbox_id}/sessions/{session_id}/run", response_model=CommandResult)
def run_in_session(
    session_id: str,
    body: SessionRunRequest,
    request: Request,
    sb: Annotated[Sandbox, Depends(running_sandbox)],
) -> CommandResult:
    st = app_state(request)
    session = st.backend.sessions.get(sb.id, session_id)
    st.metrics.commands.labels(kind="session").inc()
    try:
        result = session.run(body.cmd, timeout=body.timeout)
    except SandboxError:
        st.metrics.command_errors.labels(kind="session").inc()
        raise
    count_failure(request, "session", result)
    note(
        request,
        op="session.run",
        exit_code=result.exit_code,
        detail={"cmd": body.cmd, "session": session_id},
    )
    return result


@router.post("/sandboxes/{sandbox_id}/sessions/{session_id}/interrupt", status_code=204)
def interrupt_session(
    session_id: str, request: Request, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> Response:
    app_state(request).backend.sessions.get(sb.id, session_id).interrupt()
    note(request, op="session.interrupt", detail={"session": session_id})
    return Response(status_code=204)


@router.delete("/sandboxes/{sandbox_id}/sessions/{session_id}", status_code=204)
def close_session(
    session_id: str, request: Request, row: Annotated[SandboxRow, Depends(owned_row)]
) -> Response:
    app_state(request).backend.sessions.drop(row.id, session_id)
    note(request, op="session.close", detail={"session": session_id})
    return Response(status_code=204)


# -- snapshots -----------------------------------------------------------------------


@router.post("/sandboxes/{sandbox_id}/snapshot", response_model=Snapshot)
def snapshot_sandbox(
    request: Request,
    sb: Annotated[Sandbox, Depends(running_sandbox)],
    who: Annotated[Principal, Depends(principal)],
) -> Snapshot:
    """Commit the sandbox's filesystem to an image that ``fork`` starts copies of."""
    st = app_state(request)
    snap = st.backend.snapshot(sb)
    st.store.add_snapshot(snap, who.owner)
    note(request, op="snapshot", detail={"snapshot": snap.id})
    return snap


def _owned_snapshot(request: Request, snapshot_id: str, who: Principal):
    row = app_state(request).store.get_snapshot(snapshot_id)
    if row is None or row.owner != who.owner:
        raise SandboxNotFoundError(f"no snapshot {snapshot_id!r}")
    return row


@router.post("/snapshots/{snapshot_id}/fork", response_model=list[PlacedSandboxInfo])
def fork_snapshot(
    snapshot_id: str,
    body: ForkRequest,
    request: Request,
    who: Annotated[Principal, Depends(principal)],
) -> list[PlacedSandboxInfo]:
    """Start ``n`` sandboxes from a snapshot, in parallel; all or none."""
    st = app_state(request)
    snap = _owned_snapshot(request, snapshot_id, who).snapshot()
    if "image" in body.overrides:
        raise InvalidSpecError(
            "a fork starts from the snapshot's image; 'image' cannot be overridden"
        )
    spec = SandboxSpec.parse(**{**snap.spec.model_dump(), **body.overrides, "image": snap.image})
    with ThreadPoolExecutor(max_workers=min(body.n, 8)) as pool:
        futures = [pool.submit(start_sandbox, st, who.owner, spec) for _ in range(body.n)]
    rows, errors = [], []
    for f in futures:
        try:
            rows.append(f.result())
        except Exception as e:  # collected: every started fork is removed below
            errors.append(e)
    if errors:
        for row in rows:
            st.backend.remove(row.id)
            st.store.set_state(row.id, "deleted")
        raise errors[0]
    note(
        request,
        op="fork",
        sandbox=snap.source_sandbox,
        detail={"snapshot": snapshot_id, "forks": [r.id for r in rows]},
    )
    return [placed(st, r) for r in rows]


@router.delete("/snapshots/{snapshot_id}", status_code=204)
def delete_snapshot(
    snapshot_id: str, request: Request, who: Annotated[Principal, Depends(principal)]
) -> Response:
    st = app_state(request)
    row = _owned_snapshot(request, snapshot_id, who)
    st.backend.delete_snapshot(row.id)
    st.store.delete_snapshot(row.id)
    note(request, op="snapshot.delete", sandbox=row.source_sandbox, detail={"snapshot": row.id})
    return Response(status_code=204)
