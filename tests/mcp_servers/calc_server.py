"""A small MCP server for the MCP client tests, over stdio or streamable HTTP.

python calc_server.py                    # stdio
python calc_server.py --http --port N    # streamable HTTP on 127.0.0.1:N/mcp
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent, TextContent, ToolAnnotations

server = MCPServer("calc")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep for a while, then say so."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}s"


@server.tool()
def fail(message: str = "calculator on fire") -> str:
    """Always fails."""
    raise ToolError(message)


@server.tool()
def crash() -> str:
    """Kill the server process mid-call."""
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool(structured_output=False)
def picture() -> list[TextContent | ImageContent]:
    """A caption and a one-pixel image."""
    return [
        TextContent(type="text", text="a red dot"),
        ImageContent(type="image", data="iVBORw0KGgo=", mime_type="image/png"),
    ]


@server.tool(name="do.something weird!")
def weird_name() -> str:
    """A tool whose name is not a valid function name."""
    return "ok"


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of an HTTP request header ('' on stdio or when absent)."""
    return (ctx.headers or {}).get(name.lower(), "")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--port", type=int, default=8000)
    opts = parser.parse_args()
    if opts.http:
        server.run("streamable-http", host="127.0.0.1", port=opts.port)
    else:
        server.run()
