"""Request audit: every request that touches a sandbox becomes one store record.

A pure ASGI middleware sees the whole exchange: the caller (set by auth), the
route template and sandbox id (set by routing), the status and the bytes in
and out (counted on the wire, streams included). Handlers add what only they
know (the operation, an exit code) with ``note``. The record is queued before
the last body chunk goes out (``Store.add_audit``: a list append that
``AuditQueue``, below, writes in batches from one thread), and every audit read
flushes that queue first, so a client that reads the audit right after a
response always finds it.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from fastapi import Request
from sqlalchemy import insert
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openale.server.auth import PRINCIPAL_KEY
from openale.server.tables import AuditRow

if TYPE_CHECKING:
    from openale.server.store import Store

log = logging.getLogger("openale.server.audit")

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


# -- how records reach the store --------------------------------------------------------

AUDIT_COLUMNS = [c.name for c in AuditRow.__table__.columns if c.name != "id"]
AUDIT_BATCH_WINDOW_S = 0.05  # the writer gathers rows this long after the first one


class AuditQueue:
    """Audit rows waiting for one writer thread, which stores each batch in one transaction.

    A request only appends a dict to a list; the thread (started on first use)
    wakes at the first row, gathers for ``AUDIT_BATCH_WINDOW_S`` and inserts
    everything queued in one statement, so under load a transaction carries
    many rows. ``flush`` writes what is queued in the calling thread; it returns
    once every row queued before the call is stored.
    """

    def __init__(self, store: Store):
        self._store = weakref.ref(store)
        self._rows: list[dict[str, Any]] = []
        self._ready = threading.Condition()
        self._write_lock = threading.Lock()  # one batch at a time, so flush waits for the thread
        self._thread: threading.Thread | None = None
        self._closed = False
        _queues.add(self)

    def put(self, row: dict[str, Any]) -> None:
        with self._ready:
            self._rows.append(row)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="ale-audit", daemon=True)
                self._thread.start()
            if len(self._rows) == 1:
                self._ready.notify()
        if self._closed:
            self.flush()  # no writer any more: store it now

    def flush(self) -> None:
        with self._write_lock:
            with self._ready:
                batch, self._rows = self._rows, []
            store = self._store()
            if not batch or store is None:
                return
            try:
                with store.session() as s:
                    s.execute(insert(AuditRow), batch)
            except Exception:
                with self._ready:  # keep them for the next attempt, in order
                    self._rows[:0] = batch
                raise

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._rows and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                self._ready.wait(AUDIT_BATCH_WINDOW_S)  # close() cuts it short
            try:
                self.flush()
            except Exception:
                log.exception("audit rows could not be written; retrying in 1 s")
                time.sleep(1.0)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self.flush()


_queues: weakref.WeakSet[AuditQueue] = weakref.WeakSet()


@atexit.register
def _flush_audit_at_exit() -> None:
    for queue in list(_queues):
        try:
            queue.flush()
        except Exception:
            log.exception("audit rows were lost at exit")
