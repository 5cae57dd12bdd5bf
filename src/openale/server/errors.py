"""HTTP errors of the control plane: one JSON body shape, status codes per ``notes/API.md``.

Every error answers ``{"error": {"type": ..., "message": ...}}``. Sandbox-layer
exceptions keep their class name as ``type``; the status comes from the table
below, then from the exception's own ``status_code`` (EnvHub errors carry theirs).
This is the only map from exceptions to answers: the HTTP handlers, the
WebSocket (denials and messages) and the error events of streams all use it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openale.sandbox.errors import (
    EngineUnavailableError,
    FileTooLargeError,
    ImageNotFoundError,
    InvalidSpecError,
    ResourceLimitError,
    SandboxError,
    SandboxFileError,
    SandboxNotFoundError,
    SandboxNotRunningError,
    SessionClosedError,
)
from openale.sandbox.remote.wire import ErrorBody


class ApiError(Exception):
    """An error the server raises itself; ``type`` defaults to the class name."""

    status_code = 500

    def __init__(self, message: str, *, status_code: int | None = None, type: str | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.type = type or type_name(self)


class BadRequest(ApiError):
    status_code = 400


class InvalidPathError(BadRequest):
    """A sandbox path is relative, contains ``..`` components or a NUL byte."""


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class PayloadTooLarge(ApiError):
    status_code = 413


# Checked in order: subclasses before their bases.
_SANDBOX_STATUS: list[tuple[type[SandboxError], int]] = [
    (InvalidSpecError, 400),
    (ImageNotFoundError, 400),
    (SandboxNotFoundError, 404),
    (SandboxNotRunningError, 409),
    (SessionClosedError, 409),
    (FileTooLargeError, 413),
    (ResourceLimitError, 409),
    (EngineUnavailableError, 503),
]


# The error answers every route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 500, 503)
}


def type_name(exc: BaseException) -> str:
    return type(exc).__name__


def sandbox_status(exc: SandboxError) -> int:
    for cls, status in _SANDBOX_STATUS:
        if isinstance(exc, cls):
            return status
    if isinstance(exc, SandboxFileError):
        msg = str(exc).lower()
        missing = "no such file" in msg or "no such directory" in msg
        return 404 if missing else 400
    return int(getattr(exc, "status_code", 500) or 500)


def error_body(type_: str, message: str, status: int | None = None) -> dict:
    """The JSON error body; ``status`` goes inside it where no HTTP status carries it."""
    error: dict = {"type": type_, "message": message}
    if status is not None:
        error["status"] = status
    return {"error": error}


def error_response(status: int, type_: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse(error_body(type_, message), status_code=status, headers=headers)


def describe_exception(exc: BaseException) -> tuple[int, str, str]:
    """``(status, type, message)`` of any exception, as the API reports it."""
    if isinstance(exc, ApiError):
        return exc.status_code, exc.type, exc.message
    if isinstance(exc, SandboxError):
        return sandbox_status(exc), type_name(exc), str(exc)
    return 500, type_name(exc), str(exc) or type_name(exc)


def exception_body(exc: BaseException, *, with_status: bool = False) -> tuple[int, dict]:
    """``(status, error body)`` of any exception; ``with_status`` also puts it in the body."""
    status, type_, message = describe_exception(exc)
    return status, error_body(type_, message, status if with_status else None)


def exception_response(exc: BaseException) -> JSONResponse:
    """The HTTP answer to an exception (a 401 asks for a bearer token)."""
    status, type_, message = describe_exception(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, type_, message, headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "request"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the JSON error body."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "ValidationError", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, "HTTPError", str(exc.detail), exc.headers)

    # Typed errors are answered inside the middleware stack (the audit sees their
    # status); a handler for ``Exception`` runs outermost, for what is left.
    @app.exception_handler(ApiError)
    @app.exception_handler(SandboxError)
    @app.exception_handler(Exception)
    async def _any(_: Request, exc: Exception) -> JSONResponse:
        return exception_response(exc)
