"""The one core of the remote SDK: requests, errors, retries and byte formats.

``RemoteSandbox`` (blocking, ``remote.py``) and ``AsyncRemoteSandbox``
(asyncio, ``remote_aio.py``) both describe every operation as a ``Call`` built
here and parse the answer with the same functions, so the two faces differ
only in how bytes move (httpx's ``Client`` or ``AsyncClient``), the way httpx
itself is built. The REST contract is ``notes/API.md``.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
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
from openale.sandbox.settings import SandboxSettings
from openale.server.schemas import API_PREFIX

API = API_PREFIX
RETRIES = 6  # attempts after the first, for idempotent calls: 0.2+0.4+...+4 s ~ 10 s in all
BACKOFF_S, BACKOFF_MAX_S = 0.2, 4.0
CONNECT_TIMEOUT_S = 10.0
# Added to a command's own timeout, so the server answers before the client gives up.
READ_MARGIN_S = 60.0
DEFAULT_READ_TIMEOUT_S = 300.0  # snapshots and creates of large images take a while
CHUNK = 1 << 20
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


def raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise error_from(response.status_code, response.content)


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


# -- directories as tar streams -----------------------------------------------------------


def pack_dir(local: str | Path, max_bytes: int) -> tuple[tempfile.SpooledTemporaryFile, int]:
    """A tar of the contents of ``local`` (names relative to it) and its file bytes."""
    local = Path(local)
    if not local.is_dir():
        raise SandboxFileError(f"{local} is not a local directory")
    total = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
    if total > max_bytes:
        raise FileTooLargeError(
            f"{local}: {total} bytes exceeds the {max_bytes}-byte cap (ALE_MAX_FILE_BYTES)"
        )

    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        # The server gives extracted files to the sandbox's user.
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        for p in sorted(local.rglob("*")):
            tar.add(p, arcname=p.relative_to(local).as_posix(), recursive=False, filter=anonymous)
    return spool, total


def replay(spool: io.IOBase) -> Callable[[], Iterator[bytes]]:
    """A content factory over a spooled file: each call reads it again from the start."""

    def chunks() -> Iterator[bytes]:
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk

    return chunks


def unpack_dir(archive: io.IOBase, local: str | Path) -> int:
    """Extract the server's tar of a directory (names relative to it) into ``local``.

    Returns the bytes of the regular files extracted.
    """
    local = Path(local)
    local.mkdir(parents=True, exist_ok=True)
    archive.seek(0)
    total = 0
    with tarfile.open(fileobj=archive, mode="r:*") as tar:
        for member in tar:
            if posixpath.normpath(member.name) == ".":
                continue
            total += member.size if member.isfile() else 0
            # The "data" filter refuses absolute paths, escapes and devices.
            tar.extract(member, local, filter="data")
    return total


# -- where the server is ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A control plane and the token used on it."""

    server: str
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


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
