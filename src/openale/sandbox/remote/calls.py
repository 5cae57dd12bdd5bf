"""Every route of the control plane's REST contract as a ``Call`` (``notes/API.md``).

The blocking and the asyncio remote sandboxes send exactly these (through
``ops``); only the transport differs. Bodies are checked against the wire
schemas the server validates with (``wire``) before they leave, so a bad argument fails here
with the same ``InvalidSpecError`` the server would answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from openale.sandbox.errors import InvalidSpecError
from openale.sandbox.remote.core import API, Call
from openale.sandbox.remote.wire import (
    IDEMPOTENCY_HEADER,
    CommandRequest,
    ForkRequest,
    SessionCreateRequest,
    SessionRunRequest,
)
from openale.sandbox.spec import SandboxSpec, as_spec

# Added to a command's own timeout, so the server answers before the client gives up.
READ_MARGIN_S = 60.0


def body(model: type[BaseModel], **fields: Any) -> dict[str, Any]:
    """A request body validated by the server's schema."""
    try:
        return model(**fields).model_dump(mode="json")
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in e.errors()
        )
        raise InvalidSpecError(f"invalid {model.__name__}: {problems}") from None


def command_timeout(timeout: float | None) -> float | None:
    """The HTTP read timeout for a command that may run ``timeout`` seconds."""
    return None if timeout is None else timeout + READ_MARGIN_S


def _sb(sandbox_id: str, rest: str = "") -> str:
    return f"{API}/sandboxes/{sandbox_id}{rest}"


# -- sandboxes ----------------------------------------------------------------------------


def create(
    spec: SandboxSpec | dict | None, fields: dict[str, Any], envhub: str | None, key: str | None
) -> Call:
    """``POST /v1/sandboxes``; the Idempotency-Key makes a retried create return the same one."""
    spec = as_spec({**as_spec(spec).model_dump(), **fields} if fields else spec)
    payload = spec.model_dump(mode="json")
    if envhub is not None and "image" not in spec.model_fields_set:
        del payload["image"]  # the environment says which image
    return Call(
        "POST",
        f"{API}/sandboxes",
        json={"spec": payload, "env": envhub},
        headers={IDEMPOTENCY_HEADER: key or uuid.uuid4().hex},
        idempotent=True,
    )


def get(sandbox_id: str) -> Call:
    return Call("GET", _sb(sandbox_id), idempotent=True)


def list_all(all_owners: bool = False) -> Call:
    params = {"all": "true"} if all_owners else None
    return Call("GET", f"{API}/sandboxes", params=params, idempotent=True)


def delete(sandbox_id: str) -> Call:
    return Call("DELETE", _sb(sandbox_id), idempotent=True)


def restart(sandbox_id: str) -> Call:
    return Call("POST", _sb(sandbox_id, "/restart"))


def snapshot(sandbox_id: str) -> Call:
    return Call("POST", _sb(sandbox_id, "/snapshot"))


def fork(snapshot_id: str, n: int, overrides: dict[str, Any]) -> Call:
    payload = body(ForkRequest, n=n, overrides=overrides)
    return Call("POST", f"{API}/snapshots/{snapshot_id}/fork", json=payload)


def delete_snapshot(snapshot_id: str) -> Call:
    return Call("DELETE", f"{API}/snapshots/{snapshot_id}", idempotent=True)


# -- commands and sessions ----------------------------------------------------------------


def run(
    sandbox_id: str,
    cmd: str,
    timeout: float | None,
    env: dict[str, str] | None,
    cwd: str | None,
    user: str | None,
    *,
    stream: bool = False,
) -> Call:
    payload = body(CommandRequest, cmd=cmd, timeout=timeout, env=env, cwd=cwd, user=user)
    path = _sb(sandbox_id, "/commands/stream" if stream else "/commands")
    return Call("POST", path, json=payload, read_timeout=command_timeout(timeout))


def interrupt_command(sandbox_id: str, command_id: str) -> Call:
    return Call("POST", _sb(sandbox_id, f"/commands/{command_id}/interrupt"))


def session_create(
    sandbox_id: str, cwd: str | None, env: dict[str, str] | None, user: str | None
) -> Call:
    payload = body(SessionCreateRequest, cwd=cwd, env=env, user=user)
    return Call("POST", _sb(sandbox_id, "/sessions"), json=payload)


def session_run(sandbox_id: str, session_id: str, cmd: str, timeout: float | None) -> Call:
    payload = body(SessionRunRequest, cmd=cmd, timeout=timeout)
    path = _sb(sandbox_id, f"/sessions/{session_id}/run")
    return Call("POST", path, json=payload, read_timeout=command_timeout(timeout))


def session_interrupt(sandbox_id: str, session_id: str) -> Call:
    return Call("POST", _sb(sandbox_id, f"/sessions/{session_id}/interrupt"))


def session_delete(sandbox_id: str, session_id: str) -> Call:
    return Call("DELETE", _sb(sandbox_id, f"/sessions/{session_id}"), idempotent=True)


# -- files --------------------------------------------------------------------------------


def file_write(sandbox_id: str, path: str, data: bytes, mode: int | None) -> Call:
    params: dict[str, Any] = {"path": path}
    if mode is not None:
        params["mode"] = mode
    return Call(
        "PUT",
        _sb(sandbox_id, "/files"),
        params=params,
        content=data,
        headers={"Content-Type": "application/octet-stream"},
        idempotent=True,  # the same bytes written twice leave the same file
    )


def file_read(sandbox_id: str, path: str) -> Call:
    return Call("GET", _sb(sandbox_id, "/files"), params={"path": path}, idempotent=True)


def file_exists(sandbox_id: str, path: str) -> Call:
    return Call("GET", _sb(sandbox_id, "/files/exists"), params={"path": path}, idempotent=True)


def file_list(sandbox_id: str, path: str, depth: int) -> Call:
    params = {"path": path, "depth": depth}
    return Call("GET", _sb(sandbox_id, "/files/list"), params=params, idempotent=True)


def archive_put(sandbox_id: str, path: str, content: Callable[[], Iterator[bytes]]) -> Call:
    return Call(
        "PUT",
        _sb(sandbox_id, "/archive"),
        params={"path": path},
        content=content,
        headers={"Content-Type": "application/x-tar"},
        idempotent=True,
    )


def archive_get(sandbox_id: str, path: str) -> Call:
    return Call("GET", _sb(sandbox_id, "/archive"), params={"path": path}, idempotent=True)
