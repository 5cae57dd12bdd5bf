"""The tool interface: a name, a JSON schema for the arguments, and ``run``."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jsonschema
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from openale.agent.environment import Environment

if TYPE_CHECKING:
    from openale.agent.subagents import SubagentSpec

# Runs one sub-agent for the ``task`` tool: (its spec, the prompt) -> its report.
SubagentRunner = Callable[["SubagentSpec", str], str]


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
    run_subagent: SubagentRunner | None = None  # set by the agent loop


@runtime_checkable
class Tool(Protocol):
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    read_only: bool  # allowed in plan mode

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput: ...


class ToolSchemaError(ValueError):
    """A tool's ``parameters`` is not a valid JSON schema; raised when the tool is added."""


@functools.lru_cache(maxsize=1024)
def _compiled(schema_json: str) -> Validator:
    # Keyed by the schema's canonical JSON: every registry (one per rollout, per
    # sub-agent) holding the same tool shares one validator, checked once.
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def compile_schema(name: str, schema: dict[str, Any]) -> Validator:
    """A validator for a tool's argument schema, compiled once; ``ToolSchemaError`` if invalid."""
    try:
        return _compiled(json.dumps(schema, sort_keys=True))
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "schema"
        raise ToolSchemaError(
            f"tool {name!r} has an invalid argument schema at {where}: {e.message}"
        ) from None
    except TypeError as e:
        raise ToolSchemaError(f"tool {name!r}: the argument schema is not JSON: {e}") from None


class ToolRegistry:
    """The tools of a run by name; each tool's argument schema is checked when it is added."""

    def __init__(self, tools: list[Tool] | None = None):
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Validator] = {}
        for t in tools or []:
            self.add(t)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"two tools are named {tool.name!r}")
        self._validators[tool.name] = compile_schema(tool.name, tool.parameters)
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
        # best_match picks the error jsonschema.validate would raise, so the model
        # reads the same message as before the validators were cached.
        error = best_match(self._validators[name].iter_errors(args))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "arguments"
            raise ToolArgumentError(f"invalid arguments for {name}: {where}: {error.message}")
        return tool
