"""The agent framework's own cost per step, and the local policy's generation speed.

    python benchmarks/agent_bench.py [--steps 300] [--skip-generation]

1. ``step_overhead_ms``: a run with the replay model and the real shell tool
   in a real sandbox; per step, framework time = step wall time - model time -
   the tool's own ``run`` (timed around ``Tool.run`` itself), so everything
   the framework does around a call counts: prompt building, parsing,
   argument validation, approval, bookkeeping. Goal: p50 < 0.5 ms.
   The same run cycles, step by step, through three variants, so all see the
   same machine and the same growing prompt: this framework; the uncached
   ``jsonschema.validate`` of before (it checks the schema itself on every
   call); and that plus every turn of the prompt rendered afresh each step
   (the framework as it was before both fixes). ``before`` holds the last two.
2. Generation: ``LocalPolicy`` (batched across concurrent callers, recording
   log-probs) against bare ``model.generate`` on the same prompts
   (``agent_bench_generation.measure_generation``).
Writes ``benchmarks/results/agent.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.replay import ReplayModel
from openale.agent.tools.base import Tool, ToolContext, ToolOutput, ToolRegistry
from openale.agent.tools.builtin import default_tools
from openale.sandbox import Sandbox, SandboxSpec

GOAL_MS = 0.5

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class TimedTool:
    """Wraps a tool to time its own ``run``; whatever the agent does around it is overhead."""

    def __init__(self, tool: Tool, spent: list[float]):
        self.tool, self.spent = tool, spent
        self.name, self.description = tool.name, tool.description
        self.parameters, self.read_only = tool.parameters, tool.read_only

    def run(self, args: dict, ctx: ToolContext) -> ToolOutput:
        started = time.perf_counter()
        try:
            return self.tool.run(args, ctx)
        finally:
            self.spent.append(time.perf_counter() - started)


MODES = ("after", "uncached_validation", "uncached_validation_and_prompt")


def mode(step: int) -> str:
    return MODES[step % len(MODES)]


class CyclingRegistry(ToolRegistry):
    """Validates the old way (``jsonschema.validate``: schema re-checked) on ``before`` steps."""

    def __init__(self, tools: list[Tool]):
        super().__init__(tools)
        self.modes: list[str] = []  # one per call: one call per step

    def validate(self, name: str, args):
        self.modes.append(mode(len(self.modes)))
        tool = self.get(name)
        if self.modes[-1] != "after" and tool is not None:
            jsonschema.validate(args, tool.parameters)
            return tool
        return super().validate(name, args)


class CyclingAgent(Agent):
    """Renders every turn of the prompt afresh on ``uncached_validation_and_prompt`` steps."""

    def prompt(self, traj, upto=None, *, turns=None):
        if mode(len(traj.chunks)) == MODES[2]:
            turns = None
        return super().prompt(traj, upto, turns=turns)


def summary(overhead_ms: list[float]) -> dict:
    return {
        "steps": len(overhead_ms),
        "step_overhead_ms_p50": statistics.median(overhead_ms),
        "step_overhead_ms_p95": percentile(overhead_ms, 0.95),
    }


def step_overhead(total: int) -> dict:
    """``total`` steps, cycling through ``MODES``."""
    with tempfile.TemporaryDirectory() as tmp:
        replay = Path(tmp) / "steps.jsonl"
        rows = [
            {"tool_calls": [{"name": "shell", "arguments": {"command": f"echo {i}"}}]}
            for i in range(total)
        ]
        rows.append({"text": "done"})
        replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
        walls: list[float] = []
        tool_run: list[float] = []
        last = [time.perf_counter()]

        def on_event(kind: str, data: dict) -> None:
            if kind == "chunk":
                now = time.perf_counter()
                walls.append(now - last[0])
                last[0] = now

        registry = CyclingRegistry([TimedTool(t, tool_run) for t in default_tools()])
        agent = CyclingAgent(
            ReplayModel(replay),
            registry,
            AgentConfig(max_turns=total + 1, max_repeats=total + 2),
            on_event=on_event,
        )
        with Sandbox.create(SandboxSpec(image="openale/debian:bookworm")) as sb:
            env = SandboxEnvironment(sb)
            env.shell("true")  # the session exists before timing starts
            last[0] = time.perf_counter()
            traj = agent.run("benchmark", env)
            env.close()
    assert traj.outcome == "completed", traj.error
    chunks = traj.chunks[:total]
    modes = registry.modes[:total]
    assert len(tool_run) == len(chunks) == len(modes), "one tool call per step"
    steps_of: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
    for wall, chunk, run_s, m in zip(walls, chunks, tool_run, modes, strict=False):
        steps_of[m].append((wall, chunk.model_s, run_s))
    after = steps_of["after"]
    return {
        **summary([(w - m - t) * 1000 for w, m, t in after]),
        "step_wall_ms_p50": statistics.median(w * 1000 for w, _, _ in after),
        "model_ms_p50": statistics.median(m * 1000 for _, m, _ in after),
        "tool_run_ms_p50": statistics.median(t * 1000 for _, _, t in after),
        "goal_ms": GOAL_MS,
        "before": {
            name: summary([(w - m - t) * 1000 for w, m, t in steps_of[name]]) for name in MODES[1:]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="a third per variant")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "agent.json")
    args = parser.parse_args()
    results: dict = {"benchmark": "agent", "overhead": step_overhead(args.steps)}
    results["step_overhead_ms_p50"] = results["overhead"]["step_overhead_ms_p50"]
    if not args.skip_generation:
        from agent_bench_generation import measure_generation

        results["generation"] = measure_generation()
    results["meta"] = {
        "timestamp": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
