"""Routes for tokens (admin), the request audit, metrics (admin) and health."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from openale.server.auth import Principal, admin, principal
from openale.server.errors import ERROR_RESPONSES, Forbidden, NotFound
from openale.server.schemas import (
    ADMIN_SCOPE,
    AuditRecord,
    Health,
    TokenCreated,
    TokenCreateRequest,
    TokenInfo,
)
from openale.server.state import app_state

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("/healthz", response_model=Health, tags=["ops"])
def healthz() -> Health:
    return Health(ok=True)


@router.get("/metrics", tags=["ops"], response_class=Response)
def metrics(request: Request, _: Annotated[Principal, Depends(admin)]) -> Response:
    """Prometheus text exposition (admin scope)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(app_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


# -- tokens --------------------------------------------------------------------------


@router.post("/v1/tokens", status_code=201, response_model=TokenCreated, tags=["tokens"])
def create_token(
    body: TokenCreateRequest, request: Request, _: Annotated[Principal, Depends(admin)]
) -> TokenCreated:
    """A new token; the secret is in the response only."""
    return app_state(request).store.create_token(body.owner, body.scopes)


@router.get("/v1/tokens", response_model=list[TokenInfo], tags=["tokens"])
def list_tokens(request: Request, _: Annotated[Principal, Depends(admin)]) -> list[TokenInfo]:
    return app_state(request).store.list_tokens()


@router.delete("/v1/tokens/{token_id}", status_code=204, tags=["tokens"])
def revoke_token(
    token_id: str, request: Request, _: Annotated[Principal, Depends(admin)]
) -> Response:
    if not app_state(request).store.revoke_token(token_id):
        raise NotFound(f"no token {token_id!r}", type="TokenNotFoundError")
    return Response(status_code=204)


# -- audit ---------------------------------------------------------------------------


def _audit_owner(who: Principal, all: bool) -> str | None:
    if all and not who.admin:
        raise Forbidden(f"?all=true needs a token with the {ADMIN_SCOPE!r} scope")
    return None if all else who.owner


@router.get("/v1/audit", response_model=list[AuditRecord], tags=["audit"])
def query_audit(
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    sandbox: Annotated[str | None, Query(description="only this sandbox's records")] = None,
    since: Annotated[
        datetime | None, Query(description="only records at or after this time")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    all: Annotated[bool, Query(description="everyone's records (admin scope)")] = False,
) -> list[AuditRecord]:
    """The caller's request records, oldest first."""
    store = app_state(request).store
    return list(store.query_audit(_audit_owner(who, all), sandbox, since, limit))


@router.get(
    "/v1/audit/export",
    tags=["audit"],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_audit(
    request: Request,
    who: Annotated[Principal, Depends(principal)],
    sandbox: Annotated[str | None, Query()] = None,
    since: Annotated[datetime | None, Query()] = None,
    all: Annotated[bool, Query()] = False,
) -> StreamingResponse:
    """The same records as JSON lines, streamed."""
    store = app_state(request).store
    owner = _audit_owner(who, all)

    def lines():
        for record in store.query_audit(owner, sandbox, since):
            yield record.model_dump_json() + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
