"""The session socket of the remote SDK: one WebSocket per shell session.

``RemoteSession.run`` (and ``AsyncRemoteSession.run``, through
``AsyncSessionSocket``) sends each command as one message on a socket opened at
its first command (``GET /v1/sandboxes/{id}/sessions/{sid}/ws``, authenticated
once at connect), instead of one HTTP exchange per command. The plain HTTP
route stays the fallback: when the socket cannot be opened (an older server, a
proxy that refuses upgrades, or an error the HTTP route reports just as well)
that command goes over HTTP and the socket is tried again later. A command is
never sent twice: only a socket found closed *before* the message left is
reopened, once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from websockets.asyncio.client import ClientConnection as AsyncClientConnection
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from openale.sandbox.remote.core import (
    API,
    CONNECT_TIMEOUT_S,
    Target,
    stream_error,
    unavailable,
)
from openale.sandbox.spec import CommandResult

RETRY_SOCKET_AFTER_S = 30.0  # after a failed open, commands use HTTP this long
# The server closes the socket after these: the token or the sandbox is gone for us.
_CLOSING_STATUSES = (401, 403, 404)


def socket_url(server: str, sandbox_id: str, session_id: str) -> str:
    scheme, rest = server.split("://", 1)
    ws_scheme = "wss" if scheme == "https" else "ws"
    return f"{ws_scheme}://{rest}{API}/sandboxes/{sandbox_id}/sessions/{session_id}/ws"


class SessionSocket:
    """A lazily opened WebSocket to one session; ``run`` returns None where HTTP must serve."""

    def __init__(self, target: Target, sandbox_id: str, session_id: str):
        self.target = target
        self.url = socket_url(target.server, sandbox_id, session_id)
        self._ws: ClientConnection | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()  # one command at a time, as on the server

    def _open(self) -> ClientConnection | None:
        if self._ws is not None:
            return self._ws
        if time.monotonic() < self._retry_at:
            return None
        try:
            self._ws = connect(
                self.url,
                additional_headers=self.target.headers,
                open_timeout=CONNECT_TIMEOUT_S,
                compression=None,  # small JSON messages: deflate would cost more than it saves
                max_size=None,  # outputs are capped by the server (max_output_bytes)
                legacy=True,  # a long-lived connection, not one ``with`` block
            )
        except Exception:  # refused or unreachable: HTTP serves, and reports any error itself
            self._retry_at = time.monotonic() + RETRY_SOCKET_AFTER_S
            return None
        return self._ws

    def run(self, payload: dict[str, Any], read_timeout: float | None) -> CommandResult | None:
        """The command's result, or None when it was not sent (the caller uses HTTP)."""
        message = json.dumps({"op": "run", **payload})
        with self._lock:
            for _ in range(2):
                ws = self._open()
                if ws is None:
                    return None
                try:
                    ws.send(message)
                    break
                except ConnectionClosed:
                    self._drop()  # closed while idle (a server restart): not sent, reopen once
            else:
                return None
            try:
                text = ws.recv(timeout=read_timeout)
            except (TimeoutError, ConnectionClosed, OSError) as e:
                # Sent but unanswered: it may have run, so it is not repeated.
                self._drop()
                raise unavailable(self.target.server, e) from None
        return parse_answer(text, self._drop)

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # already broken: nothing to release but the socket
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()


def parse_answer(text: str | bytes, drop) -> CommandResult:
    """The ``CommandResult`` of a run's answer, or its typed error (``drop`` the socket on 4xx)."""
    answer = json.loads(text)
    if isinstance(answer.get("error"), dict):  # a CommandResult's own "error" is a string
        error = stream_error(answer)
        if error.status_code in _CLOSING_STATUSES:
            drop()
        raise error
    return CommandResult.model_validate(answer)


class AsyncSessionSocket:
    """``SessionSocket`` for asyncio: the same messages, fallback and no-resend rule."""

    def __init__(self, target: Target, sandbox_id: str, session_id: str):
        self.target = target
        self.url = socket_url(target.server, sandbox_id, session_id)
        self._ws: AsyncClientConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry_at = 0.0
        self._lock: asyncio.Lock | None = None

    async def _open(self) -> AsyncClientConnection | None:
        if self._ws is not None:
            return self._ws
        if time.monotonic() < self._retry_at:
            return None
        try:
            self._ws = await async_connect(
                self.url,
                additional_headers=self.target.headers,
                open_timeout=CONNECT_TIMEOUT_S,
                compression=None,
                max_size=None,
            )
        except Exception:  # refused or unreachable: HTTP serves, and reports any error itself
            self._retry_at = time.monotonic() + RETRY_SOCKET_AFTER_S
            return None
        return self._ws

    async def run(
        self, payload: dict[str, Any], read_timeout: float | None
    ) -> CommandResult | None:
        """The command's result, or None when it was not sent (the caller uses HTTP)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A socket and a lock belong to the loop they were made on: start afresh.
            self._ws, self._loop, self._lock = None, loop, asyncio.Lock()
        message = json.dumps({"op": "run", **payload})
        async with self._lock:
            for _ in range(2):
                ws = await self._open()
                if ws is None:
                    return None
                try:
                    await ws.send(message)
                    break
                except ConnectionClosed:
                    await self._drop()  # closed while idle: not sent, reopen once
            else:
                return None
            try:
                text = await asyncio.wait_for(ws.recv(), read_timeout)
            except (TimeoutError, ConnectionClosed, OSError) as e:
                await self._drop()  # sent but unanswered: it may have run, so not repeated
                raise unavailable(self.target.server, e) from None
        dropped = []
        try:
            return parse_answer(text, lambda: dropped.append(True))
        finally:
            if dropped:
                await self._drop()

    async def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                await ws.close()
            except Exception:  # already broken: nothing to release but the socket
                pass

    async def close(self) -> None:
        if self._loop is asyncio.get_running_loop():
            await self._drop()
        self._ws = None
