"""The tools a run gets: the built-in set, sub-agents from ``.ale/agents``, MCP servers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from openale.agent.settings import AgentSettings
from openale.agent.tools.base import ToolRegistry


@contextlib.contextmanager
def run_tools(settings: AgentSettings, project: Path | None = None) -> Iterator[ToolRegistry]:
    """A registry for one run; MCP servers are started for it and stopped after."""
    from openale.agent.subagents import TaskTool, load_subagents
    from openale.agent.tools.builtin import default_tools
    from openale.agent.tools.mcp import connect_mcp_servers
    from openale.agent.tools.mcp_config import load_mcp_servers

    registry = ToolRegistry(default_tools())
    specs = load_subagents((project or Path.cwd()) / ".ale" / "agents")
    if specs:
        registry.add(TaskTool(specs))
    servers = [s for s in load_mcp_servers(settings.mcp) if s.enabled] if settings.mcp else []
    if not servers:
        yield registry
        return
    with connect_mcp_servers(servers) as toolset:
        for tool in toolset.tools():
            registry.add(tool)
        yield registry
