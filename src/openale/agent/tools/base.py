"""The tool interface: a name, a JSON schema for the arguments, and ``run``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jsonschema

from openale.agent.environment import Environment


class ToolArgumentError(ValueError):
    """Arguments do not match the tool's schema; the message goes back to the model."""


@dataclass
class ToolOutput:
    output: str
    exit_code: int | None = None
    is_error: bool = False


@dataclass
class ToolContext:
    """What a tool may use while it runs."""

    env: Environment
    state: dict[str, Any] = field(default_factory=dict)  # per-run scratch (todo list, ...)
    run_subagent: Any = None  # callable(name, prompt) -> str, set by the agent loop


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    read_only: bool  # allowed in plan mode

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput: ...


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None):
        self._tools: dict[str, Tool] = {}
        for t in tools or []:
            self.add(t)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"two tools are named {tool.name!r}")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self):
        return iter(self._tools.values())

    def subset(self, names: list[str]) -> ToolRegistry:
        return ToolRegistry([t for n, t in self._tools.items() if n in names])

    def schemas(self) -> list[dict[str, Any]]:
        """OpenAI ``tools=`` entries."""
        return [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in self._tools.values()
        ]

    def validate(self, name: str, args: Any) -> Tool:
        tool = self._tools.get(name)
        if tool is None:
            raise ToolArgumentError(f"unknown tool {name!r}; available: {', '.join(self._tools)}")
        try:
            jsonschema.validate(args, tool.parameters)
        except jsonschema.ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path) or "arguments"
            raise ToolArgumentError(f"invalid arguments for {name}: {where}: {e.message}") from None
        return tool
