"""The agent framework's own cost per step, and the local policy's generation speed.

    python benchmarks/agent_bench.py [--steps 300] [--skip-generation]

1. ``step_overhead_ms``: a run of N steps with the replay model and the real
   shell tool in a real sandbox; per step, framework time = step wall time -
   model time - tool time (prompt building, parsing, validation, approval,
   bookkeeping). Goal: p50 < 5 ms.
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

from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.replay import ReplayModel
from openale.agent.tools.base import ToolRegistry
from openale.agent.tools.builtin import default_tools
from openale.sandbox import Sandbox, SandboxSpec

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def step_overhead(steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        replay = Path(tmp) / "steps.jsonl"
        rows = [
            {"tool_calls": [{"name": "shell", "arguments": {"command": f"echo {i}"}}]}
            for i in range(steps)
        ]
        rows.append({"text": "done"})
        replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
        walls: list[float] = []
        last = [time.perf_counter()]

        def on_event(kind: str, data: dict) -> None:
            if kind == "chunk":
                now = time.perf_counter()
                walls.append(now - last[0])
                last[0] = now

        agent = Agent(
            ReplayModel(replay),
            ToolRegistry(default_tools()),
            AgentConfig(max_turns=steps + 1, max_repeats=steps + 2),
            on_event=on_event,
        )
        with Sandbox.create(SandboxSpec(image="openale/debian:bookworm")) as sb:
            env = SandboxEnvironment(sb)
            env.shell("true")  # the session exists before timing starts
            last[0] = time.perf_counter()
            traj = agent.run("benchmark", env)
            env.close()
    assert traj.outcome == "completed", traj.error
    chunks = traj.chunks[:steps]
    overhead_ms = [(w - c.model_s - c.tools_s) * 1000 for w, c in zip(walls, chunks, strict=False)]
    return {
        "steps": len(overhead_ms),
        "step_overhead_ms_p50": statistics.median(overhead_ms),
        "step_overhead_ms_p95": percentile(overhead_ms, 0.95),
        "step_wall_ms_p50": statistics.median(w * 1000 for w in walls),
        "model_ms_p50": statistics.median(c.model_s * 1000 for c in chunks),
        "tool_ms_p50": statistics.median(c.tools_s * 1000 for c in chunks),
        "goal_ms": 5.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
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
