"""The two transports of the remote SDK: httpx ``Client`` and ``AsyncClient``.

Both send ``core.Call``s the same way: idempotent calls are retried with
exponential backoff on connection errors, error responses become the sandbox
layer's typed exceptions, and streaming responses are closed for the caller.
Both drive the I/O-free operations of ``ops`` (``run``), so an operation is
written once for the two faces. Clients are pooled (HTTP keep-alive), one per
server and token.
"""

from __future__ import annotations

import asyncio
import functools
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx

from openale.sandbox.errors import SandboxError
from openale.sandbox.remote.core import Call, Target, backoff, error_from, should_retry, unavailable
from openale.sandbox.remote.ops import Operation, T

LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=128)


@functools.lru_cache(maxsize=16)
def _sync_client(target: Target) -> httpx.Client:
    # One pooled keep-alive client per server and token, shared by every sandbox
    # and thread: a command's round trip then costs no TCP handshake.
    return httpx.Client(
        base_url=target.server,
        headers=target.headers,
        limits=LIMITS,
    )


class RemoteHttp:
    """Sends ``Call``s to one server: retries, typed errors, streaming."""

    def __init__(self, target: Target):
        self.target = target
        self.client = _sync_client(target)

    def _send(self, call: Call, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            try:
                request = self.client.build_request(call.method, call.path, **call.request_kwargs())
                response = self.client.send(request, stream=stream)
            except httpx.TransportError as e:
                if should_retry(call, e, attempt):
                    time.sleep(backoff(attempt))
                    attempt += 1
                    continue
                raise unavailable(self.target.server, e) from None
            if response.status_code >= 400:
                body = response.read()
                response.close()
                raise error_from(response.status_code, body)
            return response

    def send(self, call: Call) -> httpx.Response:
        return self._send(call, stream=False)

    def run(self, op: Operation[T]) -> T:
        """Drive an operation of ``ops``: send each call it yields, hand back the answer."""
        try:
            call = next(op)
            while True:
                try:
                    answer = self.send(call)
                except SandboxError as e:
                    call = op.throw(e)
                else:
                    call = op.send(answer)
        except StopIteration as done:
            return done.value

    @contextmanager
    def stream(self, call: Call) -> Iterator[httpx.Response]:
        response = self._send(call, stream=True)
        try:
            yield response
        except httpx.TransportError as e:
            raise unavailable(self.target.server, e) from None
        finally:
            response.close()


# An AsyncClient belongs to the event loop it first ran on: one pool per loop and server.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Target, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def _async_client(target: Target) -> httpx.AsyncClient:
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    if target not in per_loop:
        per_loop[target] = httpx.AsyncClient(
            base_url=target.server,
            headers=target.headers,
            limits=LIMITS,
        )
    return per_loop[target]


async def _aiter(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class AsyncRemoteHttp:
    """Sends ``Call``s to one server from asyncio: retries, typed errors, streaming."""

    def __init__(self, target: Target):
        self.target = target

    async def _send(self, call: Call, stream: bool) -> httpx.Response:
        client = _async_client(self.target)
        attempt = 0
        while True:
            kwargs = call.request_kwargs()
            if kwargs["content"] is not None and not isinstance(kwargs["content"], bytes):
                kwargs["content"] = _aiter(kwargs["content"])  # AsyncClient wants async bodies
            try:
                request = client.build_request(call.method, call.path, **kwargs)
                response = await client.send(request, stream=stream)
            except httpx.TransportError as e:
                if should_retry(call, e, attempt):
                    await asyncio.sleep(backoff(attempt))
                    attempt += 1
                    continue
                raise unavailable(self.target.server, e) from None
            if response.status_code >= 400:
                body = await response.aread()
                await response.aclose()
                raise error_from(response.status_code, body)
            return response

    async def send(self, call: Call) -> httpx.Response:
        return await self._send(call, stream=False)

    async def run(self, op: Operation[T]) -> T:
        """``RemoteHttp.run`` from asyncio: the same operations, awaited."""
        try:
            call = next(op)
            while True:
                try:
                    answer = await self.send(call)
                except SandboxError as e:
                    call = op.throw(e)
                else:
                    call = op.send(answer)
        except StopIteration as done:
            return done.value

    @asynccontextmanager
    async def stream(self, call: Call) -> AsyncIterator[httpx.Response]:
        response = await self._send(call, stream=True)
        try:
            yield response
        except httpx.TransportError as e:
            raise unavailable(self.target.server, e) from None
        finally:
            await response.aclose()
