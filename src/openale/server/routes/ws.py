"""A persistent WebSocket per shell session: ``GET /v1/sandboxes/{id}/sessions/{sid}/ws``.

The plain ``POST .../sessions/{sid}/run`` pays for a whole HTTP exchange per
command; over this socket a command is one small message each way. The token,
the sandbox's owner and state and the session are checked when the socket
opens (a refusal is an ordinary HTTP answer with the usual error body: 401, or
404 for another owner's sandbox), and again on every message, from the caches
of ``auth.py`` and ``store.py``: a revoked token is refused on its next message
(at once when revoked through this server, within ``TOKEN_CACHE_TTL_S`` when
revoked by another process), then the socket closes with code 1008.

Messages (JSON text frames), ``notes/API.md``:

- client ``{"op": "run", "cmd": str, "timeout": float|null=120}``, server answers
  ``CommandResult`` JSON, or the error body ``{"error": {"type", "message", "status"}}``;
  one command at a time per socket (a second ``run`` meanwhile answers 409);
- client ``{"op": "interrupt"}``: Ctrl-C to the running command (from 0.2 s after
  it went to the shell, repeated each second until it ends: a Ctrl-C before the
  shell reads the line would discard it), whose ``run`` then answers ``interrupted: true``;
  nothing is sent for the interrupt itself, and with no command running it does nothing.

Every ``run`` is audited like the HTTP route (``op="session.run"``, method
``WS``, exit code, bytes in and out), and so is opening the socket
(``session.connect``). A client that goes away mid-command interrupts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from openale.sandbox.errors import SandboxError, SandboxNotFoundError, SandboxNotRunningError
from openale.sandbox.remote.wire import SessionRunRequest
from openale.sandbox.session import Session
from openale.server.auth import Principal, authenticate, bearer_secret, token_cache
from openale.server.errors import BadRequest, Conflict, exception_body, exception_response
from openale.server.state import AppState, app_state

router = APIRouter(prefix="/v1", tags=["sandboxes"])
ROUTE = "/v1/sandboxes/{sandbox_id}/sessions/{session_id}/ws"
POLICY_VIOLATION = 1008  # WebSocket close code: the caller may no longer use this socket
# Errors after which the socket is of no further use to this caller.
_CLOSING_STATUSES = (401, 403, 404)
INTERRUPT_SETTLE_S = 0.2  # after the command was sent, before its first Ctrl-C


def open_session(st: AppState, who: Principal, sandbox_id: str, session_id: str) -> Session:
    """The caller's session in their running sandbox (blocking; cached lookups)."""
    row = st.store.get_sandbox(sandbox_id)
    if row is None or row.owner != who.owner or row.state == "deleted":
        raise SandboxNotFoundError(f"no sandbox {sandbox_id!r}")  # another owner's: 404 too
    if row.state != "running":
        raise SandboxNotRunningError(
            f"sandbox {row.id} is {row.state}; only running sandboxes accept this"
        )
    return st.backend.sessions.get(sandbox_id, session_id)


@router.websocket("/sandboxes/{sandbox_id}/sessions/{session_id}/ws")
async def session_socket(websocket: WebSocket, sandbox_id: str, session_id: str) -> None:
    """Run commands in one session over one connection (auth at connect and per message)."""
    st = app_state(websocket)
    who: Principal | None = None
    started = time.monotonic()
    try:
        secret = bearer_secret(websocket.headers.get("authorization"))
        who = await authenticate(st, secret)
        await anyio.to_thread.run_sync(open_session, st, who, sandbox_id, session_id)
    except Exception as e:
        denial = exception_response(e)
        if who is not None:
            _audit(
                st, who, sandbox_id, "session.connect", denial.status_code, started,
                session=session_id,
            )  # fmt: skip
        await websocket.send_denial_response(denial)
        return
    await websocket.accept()
    _audit(st, who, sandbox_id, "session.connect", 101, started, session=session_id)
    await ServedSessionSocket(st, websocket, secret, sandbox_id, session_id).serve()


class ServedSessionSocket:
    """One accepted socket: reads messages, runs one command at a time, answers each run."""

    def __init__(
        self, st: AppState, websocket: WebSocket, secret: str, sandbox_id: str, session_id: str
    ):
        self.st = st
        self.ws = websocket
        self.secret = secret
        self.sandbox_id = sandbox_id
        self.session_id = session_id
        self.running: asyncio.Task | None = None
        self.closing = False
        self.gone = False  # the client disconnected
        self.interrupts: set[asyncio.Task] = set()
        self.command_sent = threading.Event()  # the running command went to the shell

    def _check(self) -> tuple[Principal, Session]:
        """Blocking: the token is still live, the sandbox still the caller's and running."""
        who = token_cache(self.st).lookup(self.secret)
        return who, open_session(self.st, who, self.sandbox_id, self.session_id)

    async def serve(self) -> None:
        try:
            while not self.closing:
                text = await self.ws.receive_text()
                await self._on_message(text)
        except WebSocketDisconnect:
            pass
        finally:
            self.gone = True
            await self._stop_running()

    async def _stop_running(self) -> None:
        """Nobody is left to read the answer: stop the command, as a closed stream does."""
        if self.running is None or self.running.done():
            return
        with contextlib.suppress(Exception):
            _, session = await anyio.to_thread.run_sync(self._check)
            await self._interrupt(session, self.running)
        with contextlib.suppress(BaseException):
            await self.running

    async def _on_message(self, text: str) -> None:
        try:
            message = json.loads(text)
            op = message.get("op") if isinstance(message, dict) else None
        except ValueError:
            op = None
        if op == "run":
            if self.running is not None and not self.running.done():
                await self._send_error(Conflict("a command is already running on this socket"))
                return
            self.command_sent = threading.Event()
            self.running = asyncio.create_task(self._run(message, len(text.encode())))
        elif op == "interrupt":
            try:
                _, session = await anyio.to_thread.run_sync(self._check)
            except Exception as e:
                await self._send_error(e)
                return
            if self.running is not None and not self.running.done():
                task = asyncio.create_task(self._interrupt(session, self.running))
                self.interrupts.add(task)  # a reference, so the task is not collected midway
                task.add_done_callback(self.interrupts.discard)
        else:
            await self._send_error(BadRequest('a message is {"op": "run", ...} or "interrupt"'))

    async def _interrupt(self, session: Session, task: asyncio.Task) -> None:
        # A Ctrl-C that reaches the terminal before the shell has read the command
        # line flushes that line, and the run would then wait for its timeout: so
        # the first one waits until the command was sent (and a moment more), and
        # they repeat each second until the command ends.
        while not task.done() and not self.command_sent.is_set():
            await asyncio.wait({task}, timeout=0.02)
        await asyncio.wait({task}, timeout=INTERRUPT_SETTLE_S)
        while not task.done():
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(session.interrupt)
            await asyncio.wait({task}, timeout=1.0)

    async def _run(self, message: dict, bytes_in: int) -> None:
        st, started = self.st, time.monotonic()
        who: Principal | None = None
        exit_code: int | None = None
        cmd = message.get("cmd")
        try:
            try:
                body = SessionRunRequest.model_validate(
                    {k: v for k, v in message.items() if k != "op"}
                )
            except ValidationError as e:
                raise BadRequest(f"invalid run message: {e.errors()[0]['msg']}") from None

            def checked_run():
                nonlocal who
                who = token_cache(st).lookup(self.secret)
                session = open_session(st, who, self.sandbox_id, self.session_id)
                if self.gone:
                    raise Conflict("the client went away before the command started")
                self.command_sent.set()
                st.store.touch(self.sandbox_id)
                return session.run(body.cmd, timeout=body.timeout)

            st.metrics.commands.labels(kind="session").inc()
            try:
                result = await anyio.to_thread.run_sync(checked_run)
            except SandboxError:
                st.metrics.command_errors.labels(kind="session").inc()
                raise
            if result.timed_out or result.error or result.exit_code is None:
                st.metrics.command_errors.labels(kind="session").inc()
            exit_code, status = result.exit_code, 200
            reply = result.model_dump_json()
        except Exception as e:
            status, body_ = exception_body(e, with_status=True)
            reply = json.dumps(body_)
        if who is not None:
            _audit(
                st, who, self.sandbox_id, "session.run", status, started,
                exit_code=exit_code, bytes_in=bytes_in, bytes_out=len(reply.encode()),
                cmd=cmd, session=self.session_id,
            )  # fmt: skip
        with contextlib.suppress(Exception):  # the client may be gone: then nobody reads it
            await self.ws.send_text(reply)
        if status in _CLOSING_STATUSES:
            await self._close()

    async def _send_error(self, exc: BaseException) -> None:
        status, body = exception_body(exc, with_status=True)
        with contextlib.suppress(Exception):
            await self.ws.send_text(json.dumps(body))
        if status in _CLOSING_STATUSES:
            await self._close()

    async def _close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await self.ws.close(code=POLICY_VIOLATION)


def _audit(
    st: AppState,
    who: Principal,
    sandbox_id: str,
    op: str,
    status: int,
    started: float,
    *,
    exit_code: int | None = None,
    bytes_in: int = 0,
    bytes_out: int = 0,
    **detail: Any,
) -> None:
    st.store.add_audit(
        owner=who.owner,
        token_id=who.token_id,
        method="WS",
        route=ROUTE,
        op=op,
        sandbox=sandbox_id,
        status_code=status,
        exit_code=exit_code,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        duration_s=time.monotonic() - started,
        detail={k: v for k, v in detail.items() if v is not None},
    )
