"""Sub-agents: Markdown files with front matter under ``.ale/agents/``, run by the ``task`` tool.

    ---
    name: tester
    description: Runs the test suite and reports failures.
    tools: [shell, read_file, grep]
    max_turns: 10
    ---
    You are a careful tester. Run the tests and summarise each failure...

A sub-agent gets its own prompt, tool subset and budget, acts in the same
environment, and its trajectory is saved as a side chain linked to the parent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from openale.agent.tools.base import ToolContext, ToolOutput, ToolRegistry


class SubagentSpec(BaseModel):
    name: str
    description: str
    prompt: str
    tools: list[str] | None = None  # None: every tool of the parent but `task`
    max_turns: int = Field(15, ge=1)


def load_subagents(directory: Path) -> dict[str, SubagentSpec]:
    specs: dict[str, SubagentSpec] = {}
    for path in sorted(directory.glob("*.md")) if directory.is_dir() else []:
        text = path.read_text()
        if not text.startswith("---"):
            raise ValueError(f"{path}: a sub-agent file starts with '---' front matter")
        _, front, body = text.split("---", 2)
        meta = yaml.safe_load(front) or {}
        spec = SubagentSpec(prompt=body.strip(), **meta)
        specs[spec.name] = spec
    return specs


class TaskTool:
    """Delegates a self-contained piece of work to a sub-agent and returns its report."""

    name = "task"
    read_only = False

    def __init__(self, specs: dict[str, SubagentSpec]):
        self.specs = specs
        listing = "; ".join(f"{s.name}: {s.description}" for s in specs.values())
        self.description = (
            "Hand a self-contained piece of work to a sub-agent, which works on its own "
            f"and returns a report. Sub-agents: {listing}"
        )
        self.parameters = {
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": sorted(specs)},
                "prompt": {"type": "string", "description": "the work to do"},
            },
            "required": ["agent", "prompt"],
            "additionalProperties": False,
        }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if ctx.run_subagent is None:
            return ToolOutput("sub-agents are not available in this run", is_error=True)
        report = ctx.run_subagent(self.specs[args["agent"]], args["prompt"])
        return ToolOutput(report)


def subagent_runner(parent_agent, parent_traj_ref: dict, env, save_dir: Path | None):
    """The callable the ``task`` tool uses: runs a child agent and links the trajectories."""
    from openale.agent.loop import Agent, AgentConfig
    from openale.agent.trajectory import save

    def run(spec: SubagentSpec, prompt: str) -> str:
        tools = parent_agent.tools
        names = [n for n in (spec.tools or tools.names()) if n != "task"]
        config = AgentConfig(
            **{
                **parent_agent.config.model_dump(),
                "max_turns": spec.max_turns,
                "system_prompt": spec.prompt,
            }
        )
        child = Agent(
            parent_agent.model,
            ToolRegistry([tools.get(n) for n in names if tools.get(n)]),
            config,
            approval=parent_agent.approval,
            asker=parent_agent.asker,
            name=f"{parent_agent.name}/{spec.name}",
        )
        traj = child.run(prompt, env)
        parent = parent_traj_ref.get("trajectory")
        if parent is not None:
            traj.parent_id = parent.id
            parent.children.append(traj.id)
        if save_dir is not None:
            save([traj], save_dir / f"{traj.id}.jsonl", append=False)
        answer = traj.final_answer or f"(the sub-agent ended: {traj.outcome} {traj.error or ''})"
        return f"[{spec.name} — {traj.outcome}, {len(traj.chunks)} turns]\n{answer}"

    return run
