"""Server-sent events: how a worker thread's events reach a streaming response.

A build or a command runs on a thread; the response is a generator on the event
loop. ``EventChannel`` carries ``(event, data)`` pairs from the one to the other,
``sse`` frames one event and ``event_stream`` wraps a generator as the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse


def sse(event: str, data: object) -> bytes:
    """One server-sent event with a JSON ``data`` line."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def event_stream(events: AsyncIterator[bytes]) -> StreamingResponse:
    """The response for a stream of ``sse`` frames, unbuffered by proxies."""
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class EventChannel:
    """``emit`` from any thread, ``get`` on the event loop that made the channel.

    Unbounded: what the producer emits waits here until the response sends it.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def emit(self, event: str, data: object) -> None:
        # The loop is gone when the server shut down mid-stream: nobody is left to read.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (event, data))

    async def get(self, timeout: float | None = None) -> tuple[str, object]:
        """The next event; ``TimeoutError`` after ``timeout`` seconds without one."""
        return await asyncio.wait_for(self._queue.get(), timeout)
