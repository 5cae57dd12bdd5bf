"""``POST /v1/sandboxes/{id}/commands/stream``: a one-shot command's output as server-sent events.

The backend starts the command (``SandboxBackend.stream``): locally a
``CommandHandle`` whose ``on_output`` callback forwards each chunk to the event
stream as it is read; on Ray a streaming generator on the sandbox's node. The
final ``exit`` event carries the same ``CommandResult`` (capped, audited) that
``/commands`` returns.
Interrupting (or the client going away) kills the command's whole process tree.
"""

from __future__ import annotations

import codecs
import secrets
import threading
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from openale.sandbox import CommandResult, Sandbox
from openale.sandbox.errors import SandboxNotFoundError
from openale.sandbox.remote.wire import (
    SSE_ERROR,
    SSE_EXIT,
    SSE_START,
    SSE_STDERR,
    SSE_STDOUT,
    CommandRequest,
)
from openale.server.audit import note
from openale.server.errors import ERROR_RESPONSES, exception_body
from openale.server.lifecycle import owned_row, running_sandbox
from openale.server.routes.sandboxes import count_failure
from openale.server.routes.sse import EventChannel, event_stream, sse
from openale.server.state import app_state
from openale.server.store import SandboxRow

router = APIRouter(prefix="/v1", tags=["commands"], responses=ERROR_RESPONSES)
POLL_S = 1.0  # how often a silent stream checks that its client is still there
KEEPALIVE_S = 15.0  # an SSE comment this often while the command prints nothing
_OUTPUT_EVENTS = {"stdout": SSE_STDOUT, "stderr": SSE_STDERR}  # on_output's stream -> event


class StreamedCommand:
    """A streaming command the server tracks until it ends, so it can be interrupted."""

    def __init__(self, sandbox_id: str, handle: Any):
        self.sandbox_id = sandbox_id
        self.handle = handle  # the backend's: ``wait() -> CommandResult`` and ``kill()``
        self.interrupted = False

    def interrupt(self) -> None:
        """Kill the command's process tree; its ``exit`` event then says ``interrupted``."""
        self.interrupted = True
        self.handle.kill()


class CommandNotFoundError(SandboxNotFoundError):
    """No streaming command with this id is running in the sandbox (it ended, or never was)."""


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
    channel = EventChannel()

    def on_output(stream: str, data: bytes) -> None:
        channel.emit(_OUTPUT_EVENTS[stream], data)

    st.metrics.commands.labels(kind="stream").inc()
    try:
        # The backend runs it where the sandbox is: this engine, or a Ray node.
        handle = await anyio.to_thread.run_sync(
            lambda: st.backend.stream(
                sb,
                body.cmd,
                on_output,
                timeout=body.timeout,
                env=body.env,
                cwd=body.cwd,
                user=body.user,
            )
        )
    except Exception:
        st.metrics.command_errors.labels(kind="stream").inc()
        raise
    command_id = "cmd-" + secrets.token_hex(6)
    command = StreamedCommand(sb.id, handle)
    with st.commands_lock:
        st.commands[command_id] = command

    def pump() -> None:
        try:
            channel.emit(SSE_EXIT, handle.wait())
        except Exception as e:  # reported to the client as an error event
            channel.emit(SSE_ERROR, e)
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
                    kind, data = await channel.get(POLL_S)
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
                    if command.interrupted:
                        result.interrupted = True
                    count_failure(request, "stream", result)
                    note(request, exit_code=result.exit_code)
                    yield sse(SSE_EXIT, result.model_dump(mode="json"))
                else:
                    st.metrics.command_errors.labels(kind="stream").inc()
                    yield sse(SSE_ERROR, exception_body(data)[1])
                return
        finally:
            if not finished:  # the client went away: the command goes too
                # A thread, not an await: this may run inside a cancelled task.
                threading.Thread(
                    target=command.interrupt, name="ale-stream-kill", daemon=True
                ).start()

    return event_stream(events())


@router.post("/sandboxes/{sandbox_id}/commands/{command_id}/interrupt", status_code=204)
def interrupt_command(
    command_id: str, request: Request, row: Annotated[SandboxRow, Depends(owned_row)]
) -> Response:
    """Kill a streaming command and everything it started; its stream ends with ``exit``."""
    st = app_state(request)
    with st.commands_lock:
        command = st.commands.get(command_id)
    if command is None or command.sandbox_id != row.id:
        raise CommandNotFoundError(f"no running command {command_id!r} in sandbox {row.id}")
    command.interrupt()
    note(request, op="command.interrupt", detail={"command": command_id})
    return Response(status_code=204)
