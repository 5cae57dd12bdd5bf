"""Experts for initialized resampling: where they come from, where restarts anchor, replay.

An expert is a trajectory that succeeded: self-sampled (``best_experts`` of a
rollout), or the task's reference solution (``oracle_trajectory``, its
commands from ``bench.oracle``). A restart resumes ``truncate(expert, k)``,
the expert's first ``k`` chunks; ``replay`` runs a prefix's tool calls in a
sandbox to put it into the state after the prefix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from openale.agent.environment import SandboxEnvironment
from openale.agent.tools.base import ToolArgumentError, ToolContext, ToolRegistry
from openale.agent.trajectory import ActionFormat, Chunk, ToolCall, ToolResult, Trajectory
from openale.bench.oracle import OracleError, oracle_commands
from openale.rl.rollout import Episode, Rollout
from openale.tasks.model import Task

PREFIX_KEY = "expert_prefix_chunks"


class ResampleError(ValueError):
    """The expert trajectory cannot be resampled from (no anchors, no solution, ...)."""


def _action_text(command: str, fmt: ActionFormat) -> str:
    if fmt == "bash_block":
        return f"```bash\n{command}\n```"
    if fmt == "tool_call_tags":
        call = {"name": "shell", "arguments": {"command": command}}
        return f"<tool_call>{json.dumps(call)}</tool_call>"
    return ""  # native: the call is structured, no text


def scripted_trajectory(
    task: Task,
    commands: Sequence[str],
    *,
    system_prompt: str,
    action_format: ActionFormat = "bash_block",
    final_answer: str = "Done.",
) -> Trajectory:
    """An expert trajectory that runs ``commands`` in the shell, one per chunk, then answers.

    The tool results are empty until the commands are replayed in a sandbox
    (resampling fills them in from the replay).
    """
    chunks = [
        Chunk(
            index=i,
            text=_action_text(cmd, action_format),
            tool_calls=[ToolCall(name="shell", arguments={"command": cmd})],
        )
        for i, cmd in enumerate(commands)
    ]
    chunks.append(Chunk(index=len(chunks), text=final_answer))
    return Trajectory(
        task_id=task.name,
        agent="expert",
        model="scripted",
        action_format=action_format,
        system_prompt=system_prompt,
        instruction=task.instruction,
        chunks=chunks,
        outcome="completed",
    )


def oracle_trajectory(task: Task, rollout: Rollout) -> Trajectory:
    """The task's reference solution as an expert trajectory the rollout's agent could resume."""
    try:
        commands = oracle_commands(task)
    except OracleError as e:
        raise ResampleError(f"{e}; use a self-sampled expert for it") from e
    agent = rollout.agent(rollout.model)
    expert = scripted_trajectory(
        task, commands, system_prompt=agent.system_prompt(), action_format=agent.format
    )
    expert.model = "oracle"
    expert.metadata["oracle"] = True
    return expert


def best_experts(episodes: Sequence[Episode]) -> dict[str, Trajectory]:
    """Per task, the shortest passed trajectory of a rollout (self-sampled experts)."""
    best: dict[str, Trajectory] = {}
    for ep in episodes:
        traj = ep.trajectory
        if ep.passed and traj is not None and traj.chunks:
            if ep.task not in best or len(traj.chunks) < len(best[ep.task].chunks):
                best[ep.task] = traj
    return best


def choose_anchors(expert: Trajectory, n: int) -> list[int]:
    """``n`` prefix lengths spread evenly over 1..K-1 (the policy always writes the last chunk)."""
    last = len(expert.chunks) - 1
    if last < 1:
        raise ResampleError(f"{expert.id} has {len(expert.chunks)} chunk(s): no anchor to restart")
    if n >= last:
        return list(range(1, last + 1))
    # Evenly spaced, always including the latest anchor (the easiest restart).
    return sorted({round(1 + i * (last - 1) / (n - 1)) for i in range(n)} if n > 1 else {last})


def truncate(expert: Trajectory, anchor: int, mode: str) -> Trajectory:
    """A copy of ``expert`` holding its first ``anchor`` chunks, ready to be resumed."""
    traj = expert.model_copy(deep=True)
    traj.id = Trajectory().id
    traj.parent_id = expert.id
    traj.chunks = traj.chunks[:anchor]
    traj.compressions = [c for c in traj.compressions if c.upto <= anchor]
    traj.user_turns = [u for u in traj.user_turns if u.at < anchor]
    traj.started_at, traj.ended_at = datetime.now(UTC), None
    traj.outcome = traj.error = traj.reward = traj.verifier = None
    traj.usage = sum((c.usage for c in traj.chunks), type(expert.usage)())
    traj.metadata = {
        PREFIX_KEY: anchor,
        "resample": {
            "expert": expert.id,
            "anchor": anchor,
            "mode": mode,
            "expert_reward": expert.reward if expert.reward is not None else 1.0,
        },
    }
    return traj


def replay(
    chunks: Sequence[Chunk], env: SandboxEnvironment, tools: ToolRegistry, timeout: float
) -> list[list[ToolResult]]:
    """Run the chunks' tool calls in ``env`` as the agent did; returns the results per chunk.

    Calls the agent never ran (an ``invalid_action`` record, a rejected
    argument) are not run now either.
    """
    ctx = ToolContext(env=env)
    results: list[list[ToolResult]] = []
    for chunk in chunks:
        out: list[ToolResult] = []
        for call in chunk.tool_calls:
            try:
                tool = tools.validate(call.name, call.arguments)
            except ToolArgumentError as e:
                out.append(
                    ToolResult(call_id=call.id, name=call.name, output=str(e), is_error=True)
                )
                continue
            args = dict(call.arguments)
            if call.name == "shell":
                args["timeout"] = min(float(args.get("timeout", timeout)), timeout)
            res = tool.run(args, ctx)
            out.append(
                ToolResult(
                    call_id=call.id,
                    name=call.name,
                    output=res.output,
                    exit_code=res.exit_code,
                    is_error=res.is_error,
                )
            )
        results.append(out)
    return results


def fill_results(chunks: Sequence[Chunk], replayed: list[list[ToolResult]]) -> int:
    """Give chunks without results the replayed ones; count chunks whose exit codes differ."""
    differ = 0
    for chunk, res in zip(chunks, replayed, strict=True):
        if not chunk.tool_results:
            chunk.tool_results = res
        elif [r.exit_code for r in chunk.tool_results] != [r.exit_code for r in res]:
            differ += 1
    return differ
