"""MCP servers as agent tools.

Each configured server (a local command over stdio, or a streamable-HTTP URL)
gets one client session from the official ``mcp`` SDK, and each tool it lists
becomes a :class:`~openale.agent.tools.base.Tool` named ``mcp__<server>__<tool>``
(the ``[mcp]`` settings and the naming are in ``mcp_config``).

The agent loop is synchronous and the SDK is asyncio, so a toolset runs one
event loop on a background thread. Every session lives inside one long-lived
task on that loop (anyio requires a context to be left by the task that
entered it); tool calls are submitted to the loop from any thread and waited
for with the server's ``timeout_s``.

MCP servers run on the host, not in the agent's sandbox: only configure
servers you trust with the host.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import IO, Any

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CONNECTION_CLOSED,
    REQUEST_TIMEOUT,
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
)
from mcp.types import Tool as RemoteTool

from openale.agent.tools.base import ToolContext, ToolOutput
from openale.agent.tools.mcp_config import McpServerConfig, mcp_tool_name

log = logging.getLogger(__name__)

# Extra wait on the calling thread past the SDK's own timeout, which normally fires first.
_CALL_GRACE_S = 5.0
# How long close() waits for a session to wind down; the SDK bounds a stdio
# server's shutdown at about 6 s (stdin close, SIGTERM, SIGKILL).
_CLOSE_TIMEOUT_S = 15.0
_STDERR_TAIL_BYTES = 2000


class McpServerError(RuntimeError):
    """An MCP server could not be started or reached; the message names the server."""


class McpTool:
    """One remote tool, callable from the synchronous agent loop."""

    def __init__(self, connection: McpConnection, remote: RemoteTool):
        self.connection = connection
        self.remote_name = remote.name
        self.name = mcp_tool_name(connection.name, remote.name)
        self.description = remote.description or f"{remote.name} (MCP server {connection.name})"
        self.parameters: dict[str, Any] = dict(remote.input_schema)
        hints = remote.annotations
        self.read_only = bool(hints and hints.read_only_hint)

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        return self.connection.call(self.remote_name, args)

    def __repr__(self) -> str:
        return f"McpTool({self.name!r})"


class McpConnection:
    """A client session with one MCP server, held open on the toolset's event loop."""

    def __init__(self, config: McpServerConfig, loop: _LoopThread):
        self.config = config
        self.name = config.name
        self.tools: list[McpTool] = []
        self._loop = loop
        self._client: Client | None = None
        self._closing = asyncio.Event()
        self._ready: concurrent.futures.Future[list[RemoteTool]] = concurrent.futures.Future()
        self._lifetime: concurrent.futures.Future[None] | None = None
        self._stderr: IO[str] | None = None

    # -- lifecycle (caller's thread) ------------------------------------------------

    def start(self) -> None:
        """Begin connecting; :meth:`wait_ready` blocks until the tools are listed."""
        if self.config.transport == "stdio":
            self._stderr = tempfile.TemporaryFile("w+", prefix=f"ale-mcp-{self.name}-")
        self._lifetime = self._loop.submit(self._live())

    def wait_ready(self) -> None:
        """Raises :class:`McpServerError` if the server did not start."""
        try:
            remote = self._ready.result(timeout=self.config.startup_timeout_s + _CALL_GRACE_S)
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise self._start_error(
                f"no answer within {self.config.startup_timeout_s:g}s"
            ) from None
        except Exception as e:
            raise self._start_error(_describe(e)) from e
        self.tools = [McpTool(self, t) for t in remote if self.config.wants(t.name)]

    def close(self) -> None:
        """End the session and stop the server process; safe to call twice."""
        if self._lifetime is None:
            return
        self._loop.call_soon(self._closing.set)
        try:
            self._lifetime.result(timeout=_CLOSE_TIMEOUT_S)
        except Exception as e:  # the session is gone either way; say why it ended badly
            log.warning("MCP server %r did not shut down cleanly: %s", self.name, _describe(e))
        finally:
            self._lifetime = None
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def stderr_tail(self) -> str:
        """The last lines the (stdio) server wrote to stderr."""
        if self._stderr is None or self._stderr.closed:
            return ""
        fd = self._stderr.fileno()
        size = os.fstat(fd).st_size
        # pread leaves the shared file offset alone; the server is still writing to it.
        data = os.pread(fd, _STDERR_TAIL_BYTES, max(0, size - _STDERR_TAIL_BYTES))
        return data.decode(errors="replace").strip()

    def _start_error(self, reason: str) -> McpServerError:
        message = f"MCP server {self.name!r} ({self.config.target()}) failed to start: {reason}"
        if tail := self.stderr_tail():
            message += f"\nserver stderr (last lines):\n{tail}"
        self.close()
        return McpServerError(message)

    # -- calls (any thread) ---------------------------------------------------------

    def call(self, tool: str, args: dict[str, Any]) -> ToolOutput:
        """Call a tool; every failure comes back as an error output naming server and tool."""
        client, timeout = self._client, self.config.timeout_s
        where = f"MCP tool {tool!r} on server {self.name!r}"
        if client is None:
            return ToolOutput(f"{where}: the server is not connected", is_error=True)
        future = self._loop.submit(client.call_tool(tool, args, read_timeout_seconds=timeout))
        try:
            result = future.result(timeout=timeout + _CALL_GRACE_S)
        except (TimeoutError, concurrent.futures.TimeoutError):
            future.cancel()
            return ToolOutput(f"{where} timed out after {timeout:g}s", is_error=True)
        except MCPError as e:
            if e.code == REQUEST_TIMEOUT:
                return ToolOutput(f"{where} timed out after {timeout:g}s", is_error=True)
            message = f"{where} failed: {e.message}"
            if e.code == CONNECTION_CLOSED and (tail := self.stderr_tail()):
                message += f"\nserver stderr (last lines):\n{tail}"
            return ToolOutput(message, is_error=True)
        except Exception as e:
            return ToolOutput(f"{where} failed: {_describe(e)}", is_error=True)
        return ToolOutput(result_text(result), is_error=bool(result.is_error))

    # -- the session (event-loop thread) --------------------------------------------

    async def _live(self) -> None:
        """Connect, list the tools, then hold the session open until close()."""
        startup = anyio.CancelScope(deadline=anyio.current_time() + self.config.startup_timeout_s)
        try:
            with startup:
                async with AsyncExitStack() as stack:
                    transport = await self._transport(stack)
                    client = await stack.enter_async_context(Client(transport, mode="auto"))
                    remote = await _list_all_tools(client)
                    startup.deadline = math.inf
                    self._client = client
                    self._ready.set_result(remote)
                    try:
                        await self._closing.wait()
                    finally:
                        self._client = None
        except Exception as e:
            if self._ready.done():
                raise
            self._ready.set_exception(e)
        if not self._ready.done():  # the startup deadline cancelled the scope
            self._ready.set_exception(TimeoutError())

    async def _transport(self, stack: AsyncExitStack) -> Any:
        c = self.config
        if c.transport == "http":
            # The SDK's own defaults: 30 s to connect/write, 300 s to read a held-open stream.
            http = httpx2.AsyncClient(headers=c.headers, timeout=httpx2.Timeout(30.0, read=300.0))
            await stack.enter_async_context(http)
            return streamable_http_client(str(c.url), http_client=http)
        params = StdioServerParameters(
            command=str(c.command), args=c.args, env=c.env or None, cwd=c.cwd
        )
        return stdio_client(params, errlog=self._stderr)


async def _list_all_tools(client: Client) -> list[RemoteTool]:
    tools: list[RemoteTool] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def result_text(result: CallToolResult) -> str:
    """What the model sees of a tool result: text as is, other content described briefly,
    ``structuredContent`` as JSON when there is no text."""
    parts: list[str] = []
    has_text = False
    for item in result.content:
        if isinstance(item, TextContent):
            parts.append(item.text)
            has_text = has_text or bool(item.text)
        elif isinstance(item, ImageContent | AudioContent):
            size = len(item.data) * 3 // 4  # base64
            parts.append(f"[{item.type}: {item.mime_type}, about {size} bytes]")
        elif isinstance(item, ResourceLink):
            parts.append(f"[resource link: {item.uri}" + (f" ({item.name})]" if item.name else "]"))
        elif isinstance(item, EmbeddedResource):
            res = item.resource
            if isinstance(res, BlobResourceContents):
                parts.append(f"[resource {res.uri}: {res.mime_type or 'binary'}]")
            else:
                parts.append(f"[resource {res.uri}]\n{res.text}")
                has_text = True
        else:
            parts.append(f"[{getattr(item, 'type', type(item).__name__)} content]")
    if not has_text and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(p for p in parts if p)


def _describe(e: BaseException) -> str:
    """One line for an exception, looking inside anyio's exception groups."""
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) >= 1:
        e = e.exceptions[0]
    if isinstance(e, FileNotFoundError) and e.filename:
        return f"command not found: {e.filename}"
    if isinstance(e, MCPError):
        return "the server closed the connection" if e.code == CONNECTION_CLOSED else e.message
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


class _LoopThread:
    """An asyncio event loop running on a daemon thread."""

    def __init__(self, name: str = "ale-mcp"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Stopped: let whatever is left finish its cleanup, so nothing warns at exit.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Any) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(_CLOSE_TIMEOUT_S)


class McpToolset:
    """Connected MCP servers and their tools; close it (or use ``with``) to stop them.

    One left open is closed at interpreter exit, so no server outlives the agent.
    """

    def __init__(self, connections: list[McpConnection], loop: _LoopThread | None):
        self.connections = {c.name: c for c in connections}
        self._loop = loop
        self._closed = False
        atexit.register(self.close)

    def tools(self) -> list[McpTool]:
        return [t for c in self.connections.values() for t in c.tools]

    def close(self) -> None:
        """Stop every server and the event loop; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for conn in self.connections.values():
            conn.close()
        if self._loop is not None:
            self._loop.stop()

    def __enter__(self) -> McpToolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_mcp_servers(configs: Iterable[McpServerConfig]) -> McpToolset:
    """Start every enabled server (all at once), list its tools, and return the toolset.

    Raises :class:`McpServerError` if any server fails to start; the others are closed.
    """
    configs = [c for c in configs if c.enabled]
    names = [c.name for c in configs]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise McpServerError(f"MCP servers configured twice: {', '.join(dupes)}")
    loop = _LoopThread() if configs else None
    toolset = McpToolset([McpConnection(c, loop) for c in configs], loop)
    try:
        for conn in toolset.connections.values():
            conn.start()
        for conn in toolset.connections.values():
            conn.wait_ready()
        _check_unique_names(toolset.tools())
    except BaseException:
        toolset.close()
        raise
    return toolset


def _check_unique_names(tools: list[McpTool]) -> None:
    seen: dict[str, McpTool] = {}
    for tool in tools:
        if other := seen.get(tool.name):
            raise McpServerError(
                f"MCP tools {other.connection.name}/{other.remote_name} and "
                f"{tool.connection.name}/{tool.remote_name} both map to {tool.name!r}; "
                "rename a server or exclude one of the tools"
            )
        seen[tool.name] = tool
