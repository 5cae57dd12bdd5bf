"""The one core of the remote SDK: requests, errors, retries, streams and byte formats.

``RemoteSandbox`` (blocking, ``sandbox.py``) and ``AsyncRemoteSandbox``
(asyncio, ``aio.py``) both describe every operation with what is here and in
``calls``/``ops``, so the two faces differ only in how bytes move (httpx's
``Client`` or ``AsyncClient``), the way httpx itself is built. The REST
contract is ``notes/API.md``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from openale.sandbox import errors
from openale.sandbox.errors import (
    EngineUnavailableError,
    FileTooLargeError,
    InvalidSpecError,
    SandboxError,
    SandboxFileError,
    SandboxNotFoundError,
    SandboxNotRunningError,
)
from openale.sandbox.remote.wire import API_PREFIX, SSE_ERROR, SSE_EXIT, SSE_START
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec

API = API_PREFIX
RETRIES = 6  # attempts after the first, for idempotent calls: 0.2+0.4+...+4 s ~ 10 s in all
BACKOFF_S, BACKOFF_MAX_S = 0.2, 4.0
CONNECT_TIMEOUT_S = 10.0
DEFAULT_READ_TIMEOUT_S = 300.0  # snapshots and creates of large images take a while
# A request that may have reached the server: only idempotent calls repeat it.
RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.WriteError,
             httpx.RemoteProtocolError, httpx.PoolTimeout)  # fmt: skip


class ServerError(SandboxError):
    """The control plane answered with an error that has no more specific type."""


class ServerAuthError(ServerError):
    """The token is missing, unknown or revoked (401), or lacks a scope (403)."""


class ServerUnavailableError(EngineUnavailableError):
    """The control plane cannot be reached (after retrying, for idempotent calls)."""


_BY_NAME: dict[str, type[SandboxError]] = {
    name: cls
    for name, cls in vars(errors).items()
    if isinstance(cls, type) and issubclass(cls, SandboxError)
}
_BY_NAME.update(
    InvalidPathError=SandboxFileError,  # the server's name for a bad sandbox path
    ServerError=ServerError,
    ServerAuthError=ServerAuthError,
    ServerUnavailableError=ServerUnavailableError,
)
# When the body names no known type, the status code chooses (API.md's table).
_BY_STATUS: dict[int, type[SandboxError]] = {
    400: InvalidSpecError,
    401: ServerAuthError,
    403: ServerAuthError,
    404: SandboxNotFoundError,
    409: SandboxNotRunningError,
    413: FileTooLargeError,
    422: InvalidSpecError,
    503: EngineUnavailableError,
}


def error_from(status: int, body: bytes) -> SandboxError:
    """The typed exception for an error response of the control plane."""
    kind, message = "", body.decode(errors="replace").strip()
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        kind = str(payload["error"].get("type", ""))
        message = str(payload["error"].get("message", message))
    elif isinstance(payload, dict) and "detail" in payload:  # FastAPI's own 422 body
        message = json.dumps(payload["detail"])
    if status in (401, 403):
        cls: type[SandboxError] = ServerAuthError
    else:
        cls = _BY_NAME.get(kind) or _BY_STATUS.get(status, ServerError)
    error = cls(message or f"the server answered {status}")
    error.status_code = status  # the instance keeps what the server really said
    return error


def unavailable(server: str, e: Exception) -> ServerUnavailableError:
    return ServerUnavailableError(
        f"cannot reach the openale server at {server} ({type(e).__name__}: {e}); "
        "is `ale serve` running there (ALE_SERVER)?"
    )


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): 0.2, 0.4, 0.8, ... 4."""
    return min(BACKOFF_S * (2**attempt), BACKOFF_MAX_S)


def should_retry(call: Call, e: Exception, attempt: int) -> bool:
    return call.idempotent and isinstance(e, RETRYABLE) and attempt < RETRIES


# -- calls --------------------------------------------------------------------------------


@dataclass
class Call:
    """One HTTP request of the contract, and whether repeating it is safe."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    # Bytes, or a factory of a fresh byte iterator (so a retry can send it again).
    content: bytes | Callable[[], Iterator[bytes]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = False
    read_timeout: float | None = DEFAULT_READ_TIMEOUT_S

    def request_kwargs(self) -> dict[str, Any]:
        content = self.content() if callable(self.content) else self.content
        return {
            "params": self.params,
            "json": self.json,
            "content": content,
            "headers": self.headers or None,
            "timeout": httpx.Timeout(CONNECT_TIMEOUT_S, read=self.read_timeout),
        }


# -- answers ------------------------------------------------------------------------------


def abs_path(workdir: str, path: str) -> str:
    """Resolve ``path`` against the sandbox's workdir, as the embedded ``Files`` does."""
    if "\0" in path:
        raise SandboxFileError("paths cannot contain NUL bytes")
    return posixpath.normpath(posixpath.join(workdir, path))


class SseParser:
    """Server-sent events, one line at a time -> ``(event, data)`` pairs."""

    def __init__(self) -> None:
        self._event, self._data = "message", []

    def feed(self, line: str) -> tuple[str, Any] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                return None
            event, data = self._event, "\n".join(self._data)
            self._event, self._data = "message", []
            try:
                return event, json.loads(data)
            except ValueError:
                return event, data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def stream_error(data: Any) -> SandboxError:
    """The exception of an ``event: error`` in a command stream."""
    body = json.dumps(data if isinstance(data, dict) and "error" in data else {"error": data})
    status = 500
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        status = int(data["error"].get("status", 500) or 500)
    return error_from(status, body.encode())


class CommandEvents:
    """What the event stream of a background command said: its id, then its result or error.

    Both faces' command handles feed it the stream's lines; only how they wait differs.
    """

    def __init__(self) -> None:
        self._parser = SseParser()
        self.command_id: str | None = None
        self.result: CommandResult | None = None
        self.error: SandboxError | None = None

    def feed(self, line: str) -> bool:
        """Take one line; True when it completed the ``start`` event (the command runs)."""
        event = self._parser.feed(line)
        if event is None:
            return False
        name, data = event
        if name == SSE_START:
            self.command_id = data["command_id"]
            return True
        if name == SSE_EXIT:
            self.result = CommandResult.model_validate(data)
        elif name == SSE_ERROR:
            self.error = stream_error(data)
        return False

    def end(self, error: SandboxError | None = None) -> None:
        """The stream is over (``error``: it broke); a stream without a result is an error."""
        if error is not None:
            self.error = error
        elif self.result is None and self.error is None:
            self.error = ServerError("the command stream ended without an exit event")

    @property
    def failed_to_start(self) -> SandboxError | None:
        """The error of a command that never started (raised at once, as embedded)."""
        return self.error if self.command_id is None else None

    def outcome(self) -> CommandResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


# -- what both faces of a remote sandbox hold -----------------------------------------------


class RemoteState:
    """A remote sandbox's identity and state, the same for the blocking and asyncio faces."""

    def __init__(
        self, target: Target, info: SandboxInfo, settings: SandboxSettings | None, detached: bool
    ):
        self.id = info.id
        self.spec: SandboxSpec = info.spec
        self.server = target.server
        # The caller's settings: local caps such as ``max_file_bytes`` apply to transfers.
        self.settings = settings or SandboxSettings()
        self.detached = detached
        self.closed = False

    def abs_path(self, path: str) -> str:
        return abs_path(self.spec.workdir, path)

    def ensure_running(self) -> None:
        if self.closed:
            raise SandboxNotRunningError(f"sandbox {self.id} is closed")

    def __repr__(self) -> str:
        name, image = type(self).__name__, self.spec.image
        return f"{name}({self.id!r}, image={image!r}, server={self.server!r})"


# -- where the server is ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A control plane and the token used on it."""

    server: str
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def require_target(
    server: str | None, token: str | None, settings: SandboxSettings | None
) -> Target:
    target = resolve_target(server, token, settings)
    if target is None:
        raise ValueError("no server: pass server= or set ALE_SERVER")
    return target


def resolve_target(
    server: str | None, token: str | None, settings: SandboxSettings | None
) -> Target | None:
    """``server=``/``token=`` arguments, else ``ALE_SERVER``/``ALE_TOKEN``; None = embedded."""
    if server is None:
        settings = settings or SandboxSettings()
        server = settings.server
    if not server:
        return None
    if token is None:
        settings = settings or SandboxSettings()
        token = settings.token.get_secret_value() if settings.token else None
    server = server.rstrip("/")
    if "://" not in server:
        server = "http://" + server
    return Target(server, token)
