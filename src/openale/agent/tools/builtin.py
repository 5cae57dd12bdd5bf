"""The built-in tools, and ``finish``, the call that ends a run.

The ``task`` sub-agent tool and MCP tools live elsewhere: they need the agent
loop or a server connection to be built.
"""

from __future__ import annotations

from typing import Any

from openale.agent.tools.base import Tool, ToolContext, ToolOutput
from openale.agent.tools.files import EditTool, ReadFileTool, WriteFileTool
from openale.agent.tools.search import GlobTool, GrepTool, ListTool
from openale.agent.tools.shell import ShellTool
from openale.agent.tools.todo import TodoTool

FINISH = "finish"


class FinishTool:
    name = FINISH
    description = (
        "Call this once the task is complete (or cannot be completed) to end the run. "
        "Put the final answer or a short summary of what you did in `answer`; it is "
        "what the user sees."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "description": "The final answer or summary."},
        },
        "additionalProperties": False,
    }
    read_only = True

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        # The agent loop ends the run when it sees this tool called.
        return ToolOutput(args.get("answer", ""))


def default_tools() -> list[Tool]:
    """Fresh instances of every built-in tool, in the order models are shown them."""
    return [
        ShellTool(),
        ReadFileTool(),
        WriteFileTool(),
        EditTool(),
        ListTool(),
        GlobTool(),
        GrepTool(),
        TodoTool(),
        FinishTool(),
    ]


TOOLS_BY_NAME: dict[str, Tool] = {tool.name: tool for tool in default_tools()}
