"""Request and response models of the control plane's REST API (``notes/API.md``).

The server validates with these and the remote SDK imports them, so both sides
of the wire share one definition. Sandbox specs, infos, command results,
snapshots and file entries are the sandbox layer's own models
(``openale.sandbox.spec``, ``openale.sandbox.files``); only what they lack is here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openale.sandbox.files import FileEntry
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot

API_PREFIX = "/v1"
ADMIN_SCOPE = "admin"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_MAX_UPLOAD_BYTES = 512 << 20

# Server-sent event names of ``POST /v1/sandboxes/{id}/commands/stream``.
SSE_START, SSE_STDOUT, SSE_STDERR, SSE_EXIT, SSE_ERROR = (
    "start",
    "stdout",
    "stderr",
    "exit",
    "error",
)


class _Request(BaseModel):
    # Unknown fields are refused (422) rather than silently dropped: a typo in a
    # field name would otherwise run a command with defaults the caller never meant.
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    type: str = Field(description="exception class name or category, e.g. SandboxNotFoundError")
    message: str


class ErrorBody(BaseModel):
    """The body of every non-2xx response."""

    error: ErrorDetail


# -- sandboxes ----------------------------------------------------------------------------


class CreateSandboxRequest(_Request):
    """``POST /v1/sandboxes``. With ``env`` set, ``spec.image`` may be left out."""

    spec: SandboxSpec = Field(default_factory=SandboxSpec)
    env: str | None = Field(None, description="EnvHub environment 'name@version'")


class CommandRequest(_Request):
    """``POST /v1/sandboxes/{id}/commands`` (and ``/commands/stream``): one ``sh -c``."""

    cmd: str
    timeout: float | None = Field(600.0, gt=0)
    env: dict[str, str] | None = None
    cwd: str | None = None
    user: str | None = None


class StreamStart(BaseModel):
    """Data of the ``start`` event: the id to interrupt the command with."""

    command_id: str


class StreamChunk(BaseModel):
    """Data of ``stdout`` / ``stderr`` events (decoded as UTF-8, invalid bytes replaced)."""

    data: str


class SessionCreateRequest(_Request):
    cwd: str | None = None
    env: dict[str, str] | None = None
    user: str | None = None


class SessionCreated(BaseModel):
    session_id: str


class SessionRunRequest(_Request):
    cmd: str
    timeout: float | None = Field(120.0, gt=0)


class ExistsResponse(BaseModel):
    exists: bool


class ForkRequest(_Request):
    """``POST /v1/snapshots/{id}/fork``: ``overrides`` are SandboxSpec fields."""

    n: int = Field(1, ge=1, le=64)
    overrides: dict[str, Any] = Field(default_factory=dict)


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


class TokenCreateRequest(_Request):
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


SandboxState = Literal["pending", "running", "stopped", "deleted", "failed"]

__all__ = [
    "ADMIN_SCOPE",
    "API_PREFIX",
    "AuditRecord",
    "CommandRequest",
    "CommandResult",
    "CreateSandboxRequest",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "ErrorBody",
    "ErrorDetail",
    "ExistsResponse",
    "FileEntry",
    "ForkRequest",
    "Health",
    "IDEMPOTENCY_HEADER",
    "SSE_ERROR",
    "SSE_EXIT",
    "SSE_START",
    "SSE_STDERR",
    "SSE_STDOUT",
    "SandboxInfo",
    "SandboxSpec",
    "SandboxState",
    "SessionCreateRequest",
    "SessionCreated",
    "SessionRunRequest",
    "Snapshot",
    "StreamChunk",
    "StreamStart",
    "TokenCreateRequest",
    "TokenCreated",
    "TokenInfo",
]
