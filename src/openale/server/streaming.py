"""``POST /v1/sandboxes/{id}/commands/stream``: a one-shot command's output as server-sent events.

The backend starts the command (``SandboxBackend.stream``): locally a
``CommandHandle`` whose output buffers also forward each chunk to the event
stream as it arrives; on Ray a streaming generator on the sandbox's node. The
final ``exit`` event carries the same ``CommandResult`` (capped, audited) that
``/commands`` returns.
Interrupting (or the client going away) kills the command's whole process tree.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import secrets
import threading
from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from openale.sandbox import CommandHandle, CommandResult, Sandbox
from openale.sandbox.errors import SandboxNotFoundError
from openale.sandbox.remote.wire import (
    SSE_ERROR,
    SSE_EXIT,
    SSE_START,
    SSE_STDERR,
    SSE_STDOUT,
    CommandRequest,
)
from openale.sandbox.streams import CappedBuffer, FrameDemuxer
from openale.server.audit import note
from openale.server.errors import describe_exception, error_body
from openale.server.lifecycle import owned_row, running_sandbox
from openale.server.routes_sandboxes import ERRORS, count_failure
from openale.server.state import app_state
from openale.server.store import SandboxRow

router = APIRouter(prefix="/v1", tags=["commands"], responses=ERRORS)
POLL_S = 1.0  # how often a silent stream checks that its client is still there
KEEPALIVE_S = 15.0  # an SSE comment this often while the command prints nothing


class _TeeBuffer(CappedBuffer):
    """A capped buffer that also hands every chunk to ``forward``."""

    def __init__(self, cap: int, forward: Callable[[bytes], None]):
        super().__init__(cap)
        self._forward = forward

    def write(self, data: bytes) -> None:
        super().write(data)
        self._forward(data)


class StreamingCommand(CommandHandle):
    """A ``CommandHandle`` whose stdout/stderr chunks go to ``emit(kind, bytes)`` live."""

    def __init__(self, sandbox: Sandbox, cmd: str, emit: Callable[[str, object], None], **kw):
        super().__init__(sandbox, cmd, **kw)
        # The exec has started but nothing was read yet: its bytes wait in the
        # socket, so swapping the buffers here loses none.
        cap = sandbox.settings.max_output_bytes
        self._stdout = _TeeBuffer(cap, lambda d: emit(SSE_STDOUT, d))
        self._stderr = _TeeBuffer(cap, lambda d: emit(SSE_STDERR, d))
        self._demux = FrameDemuxer(self._stdout, self._stderr)
        self.interrupted = False


class CommandNotFoundError(SandboxNotFoundError):
    """No streaming command with this id is running in the sandbox (it ended, or never was)."""


def sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@router.post(
    "/sandboxes/{sandbox_id}/commands/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_command(
    body: CommandRequest, request: Request, sb: Annotated[Sandbox, Depends(running_sandbox)]
) -> StreamingResponse:
    """Events: ``start`` {command_id}, ``stdout``/``stderr`` {data}, then ``exit`` CommandResult
    (or ``error`` with the error body)."""
    st = app_state(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def emit(kind: str, data: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, data))

    st.metrics.commands.labels(kind="stream").inc()
    try:
        # The backend runs it where the sandbox is: this engine, or a Ray node.
        handle = await anyio.to_thread.run_sync(
            lambda: st.backend.stream(
                sb, body.cmd, emit, timeout=body.timeout, env=body.env, cwd=body.cwd, user=body.user
            )
        )
    except Exception:
        st.metrics.command_errors.labels(kind="stream").inc()
        raise
    command_id = "cmd-" + secrets.token_hex(6)
    with st.commands_lock:
        st.commands[command_id] = (sb.id, handle)

    def pump() -> None:
        try:
            emit(SSE_EXIT, handle.wait())
        except Exception as e:  # reported to the client as an error event
            emit(SSE_ERROR, e)
        finally:
            with st.commands_lock:
                st.commands.pop(command_id, None)

    threading.Thread(target=pump, name=f"ale-stream-{command_id}", daemon=True).start()
    note(request, op="command.stream", detail={"cmd": body.cmd, "command": command_id})

    async def events():
        decoders = {
            k: codecs.getincrementaldecoder("utf-8")("replace") for k in (SSE_STDOUT, SSE_STDERR)
        }
        finished = False
        try:
            yield sse(SSE_START, {"command_id": command_id})
            quiet_s = 0.0
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), POLL_S)
                except TimeoutError:
                    # A silent command gives no send that could fail: look for
                    # the client going away, and keep proxies from timing out.
                    if await request.is_disconnected():
                        return
                    quiet_s += POLL_S
                    if quiet_s >= KEEPALIVE_S:
                        quiet_s = 0.0
                        yield b": keepalive\n\n"
                    continue
                quiet_s = 0.0
                if kind in decoders:
                    text = decoders[kind].decode(data)
                    if text:
                        yield sse(kind, {"data": text})
                    continue
                for k, dec in decoders.items():
                    tail = dec.decode(b"", final=True)
                    if tail:
                        yield sse(k, {"data": tail})
                finished = True
                if kind == SSE_EXIT:
                    result: CommandResult = data
                    if handle.interrupted:
                        result.interrupted = True
                    count_failure(request, "stream", result)
                    note(request, exit_code=result.exit_code)
                    yield sse(SSE_EXIT, result.model_dump(mode="json"))
                else:
                    st.metrics.command_errors.labels(kind="stream").inc()
                    _, type_, message = describe_exception(data)
                    yield sse(SSE_ERROR, error_body(type_, message))
                return
        finally:
            if not finished:  # the client went away: the command goes too
                handle.interrupted = True
                # A thread, not an await: this may run inside a cancelled task.
                threading.Thread(target=handle.kill, name="ale-stream-kill", daemon=True).start()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/sandboxes/{sandbox_id}/commands/{command_id}/interrupt", status_code=204)
def interrupt_command(
    command_id: str, request: Request, row: Annotated[SandboxRow, Depends(owned_row)]
) -> Response:
    """Kill a streaming command and everything it started; its stream ends with ``exit``."""
    st = app_state(request)
    with st.commands_lock:
        entry = st.commands.get(command_id)
    if entry is None or entry[0] != row.id:
        raise CommandNotFoundError(f"no running command {command_id!r} in sandbox {row.id}")
    handle = entry[1]
    handle.interrupted = True
    handle.kill()
    note(request, op="command.interrupt", detail={"command": command_id})
    return Response(status_code=204)
