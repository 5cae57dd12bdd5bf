"""Request audit: every request that touches a sandbox becomes one store record.

A pure ASGI middleware sees the whole exchange: the caller (set by auth), the
route template and sandbox id (set by routing), the status and the bytes in
and out (counted on the wire, streams included). Handlers add what only they
know (the operation, an exit code) with ``note``. The record is queued before
the last body chunk goes out (``Store.add_audit``: a list append, written in
batches by the store's writer thread), and every audit read flushes that queue
first, so a client that reads the audit right after a response always finds it.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openale.server.auth import PRINCIPAL_KEY

NOTE_KEY = "ale.audit"


def note(request: Request, **fields: Any) -> None:
    """Add to this request's audit record (``op``, ``sandbox``, ``exit_code``, ``detail``...)."""
    request.scope.setdefault(NOTE_KEY, {}).update(fields)


class AuditMiddleware:
    def __init__(self, app: ASGIApp, state_getter):
        self.app = app
        self._state = state_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[NOTE_KEY] = {}
        started = time.monotonic()
        counts = {"in": 0, "out": 0, "status": 500}
        recorded = False

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counts["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
                if not message.get("more_body", False) and not recorded:
                    recorded = True
                    await self._record(scope, counts, started)
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if not recorded:
                await self._record(scope, counts, started)

    async def _record(self, scope: Scope, counts: dict, started: float) -> None:
        state = self._state()
        state.metrics.requests.labels(status=f"{counts['status'] // 100}xx").inc()
        who = scope.get(PRINCIPAL_KEY)
        extra = dict(scope.get(NOTE_KEY) or {})
        sandbox = extra.pop("sandbox", None) or (scope.get("path_params") or {}).get("sandbox_id")
        if who is None or (sandbox is None and "op" not in extra):
            return
        route = getattr(scope.get("route"), "path", None) or scope.get("path", "")
        fields = {
            "owner": who.owner,
            "token_id": who.token_id,
            "method": scope["method"],
            "route": route,
            "op": extra.pop("op", None) or f"{scope['method']} {route}",
            "sandbox": sandbox,
            "status_code": counts["status"],
            "exit_code": extra.pop("exit_code", None),
            "bytes_in": extra.pop("bytes_in", None) or counts["in"],
            "bytes_out": extra.pop("bytes_out", None) or counts["out"],
            "duration_s": time.monotonic() - started,
            "detail": extra.pop("detail", None) or extra,
        }
        state.store.add_audit(**fields)  # no I/O here: queued for the writer thread
