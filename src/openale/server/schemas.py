"""The control plane's own models: tokens, audit records, health (``notes/API.md``).

What the server shares with the remote SDK (sandbox requests, errors, stream
events) is the sandbox layer's wire, ``openale.sandbox.remote.wire``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from openale.sandbox.remote.wire import WireRequest

ADMIN_SCOPE = "admin"
DEFAULT_MAX_UPLOAD_BYTES = 512 << 20


# -- audit --------------------------------------------------------------------------------


class AuditRecord(BaseModel):
    """One request that touched a sandbox, as the control plane recorded it."""

    id: int
    ts: datetime
    owner: str
    token_id: str | None = None
    method: str
    route: str = Field(description="route template, e.g. /v1/sandboxes/{sandbox_id}/commands")
    op: str = Field(description="what was done, e.g. command, file.write, create")
    sandbox: str | None = None
    status_code: int
    exit_code: int | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    duration_s: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


# -- tokens -------------------------------------------------------------------------------


class TokenCreateRequest(WireRequest):
    owner: str = Field(min_length=1, max_length=128)
    scopes: list[str] = Field(default_factory=list)


class TokenCreated(BaseModel):
    """The secret is in ``token`` and is shown only here, once."""

    id: str
    token: str
    owner: str
    scopes: list[str]


class TokenInfo(BaseModel):
    id: str
    owner: str
    scopes: list[str]
    created_at: datetime
    revoked: bool = False


# -- ops ----------------------------------------------------------------------------------


class Health(BaseModel):
    ok: bool = True
