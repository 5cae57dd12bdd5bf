"""MCP settings (``[agent.mcp]``): one ``McpServerConfig`` per server; agent tool names.

[agent.mcp.servers.fs]   # in .ale/settings.toml
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/work"]
exclude = ["write_*"]

[agent.mcp.servers.search]
url = "https://example.com/mcp"
headers = { Authorization = "Bearer ..." }
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# OpenAI-style function names: [A-Za-z0-9_-]{1,64}.
MAX_TOOL_NAME = 64


class McpServerConfig(BaseModel):
    """One ``[mcp.servers.NAME]`` table.

    ``transport`` may be left out: a table with ``url`` is ``"http"``, otherwise ``"stdio"``.
    ``include``/``exclude`` are glob patterns matched against the server's tool name
    (``"read_*"``) or the full agent tool name (``"mcp__fs__read_*"``); ``exclude`` wins.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    transport: Literal["stdio", "http"] = "stdio"
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: Path | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(60.0, gt=0, description="per tool call")
    startup_timeout_s: float = Field(30.0, gt=0, description="start, handshake and tool listing")
    include: list[str] | None = None
    exclude: list[str] | None = None
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _infer_transport(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "transport" not in data:
            return {**data, "transport": "http" if "url" in data else "stdio"}
        return data

    @model_validator(mode="after")
    def _check_transport_fields(self) -> McpServerConfig:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError(f"MCP server {self.name!r}: a stdio server needs `command`")
            if self.url or self.headers:
                raise ValueError(f"MCP server {self.name!r}: `url`/`headers` are for http servers")
        else:
            if not self.url:
                raise ValueError(f"MCP server {self.name!r}: an http server needs `url`")
            if self.command or self.args or self.env or self.cwd:
                raise ValueError(
                    f"MCP server {self.name!r}: `command`/`args`/`env`/`cwd` are for stdio servers"
                )
        return self

    def target(self) -> str:
        """The command line or URL, for messages."""
        if self.transport == "http":
            return str(self.url)
        return shlex.join([str(self.command), *self.args])

    def wants(self, tool: str) -> bool:
        """Whether the include/exclude patterns keep the server's tool ``tool``."""
        names = (tool, mcp_tool_name(self.name, tool))

        def hit(patterns: list[str]) -> bool:
            return any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns)

        if self.include is not None and not hit(self.include):
            return False
        return not (self.exclude and hit(self.exclude))


def load_mcp_servers(table: Mapping[str, Any]) -> list[McpServerConfig]:
    """Configs from the ``[mcp]`` table (``{"servers": {NAME: {...}}}``) or from its
    ``servers`` mapping itself. The table key is the server's name."""
    servers = table.get("servers")
    if isinstance(servers, Mapping) and all(isinstance(v, Mapping) for v in servers.values()):
        table = servers
    configs = []
    for name, fields in table.items():
        if not isinstance(fields, Mapping):
            raise ValueError(f"[mcp.servers.{name}] must be a table, got {fields!r}")
        configs.append(McpServerConfig.model_validate({**fields, "name": name}))
    return configs


def _sanitize(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", part)


def mcp_tool_name(server: str, tool: str) -> str:
    """``mcp__<server>__<tool>`` in [A-Za-z0-9_-]; names past 64 characters are cut and
    end in a hash of the full name, so they stay unique."""
    name = f"mcp__{_sanitize(server)}__{_sanitize(tool)}"
    if len(name) > MAX_TOOL_NAME:
        digest = hashlib.sha1(f"{server}\0{tool}".encode()).hexdigest()[:8]
        name = f"{name[: MAX_TOOL_NAME - 9]}_{digest}"
    return name
