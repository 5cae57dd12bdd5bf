"""The wire of the sandbox API (``notes/API.md``): what the server and the remote SDK share.

The control plane validates requests with these models and the remote SDK
builds them, so both sides of the wire use one definition, and it lives in the
sandbox layer, which the server sits on. Sandbox specs, infos, command results,
snapshots and file entries are the sandbox layer's own models
(``openale.sandbox.spec``, ``openale.sandbox.files``); only what they lack is
here. The server's own admin models (tokens, audit records) stay in the server.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openale.sandbox.spec import SandboxSpec

API_PREFIX = "/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"

# Server-sent event names of ``POST /v1/sandboxes/{id}/commands/stream``.
SSE_START, SSE_STDOUT, SSE_STDERR, SSE_EXIT, SSE_ERROR = (
    "start",
    "stdout",
    "stderr",
    "exit",
    "error",
)


class WireRequest(BaseModel):
    """A request body of the API; the server's own request models build on it too."""

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


class CreateSandboxRequest(WireRequest):
    """``POST /v1/sandboxes``. With ``env`` set, ``spec.image`` may be left out."""

    spec: SandboxSpec = Field(default_factory=SandboxSpec)
    env: str | None = Field(None, description="EnvHub environment 'name@version'")


class CommandRequest(WireRequest):
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


class SessionCreateRequest(WireRequest):
    cwd: str | None = None
    env: dict[str, str] | None = None
    user: str | None = None


class SessionCreated(BaseModel):
    session_id: str


class SessionRunRequest(WireRequest):
    cmd: str
    timeout: float | None = Field(120.0, gt=0)


class ExistsResponse(BaseModel):
    exists: bool


class ForkRequest(WireRequest):
    """``POST /v1/snapshots/{id}/fork``: ``overrides`` are SandboxSpec fields."""

    n: int = Field(1, ge=1, le=64)
    overrides: dict[str, Any] = Field(default_factory=dict)
