"""Oracle trajectories: a task's reference solution, acted out by the real agent.

The reference solution (``solution/solve.sh``) becomes a script of assistant
turns in the ``bash_block`` action format, one fenced ```bash block per
command, then a short final answer. A ``ScriptedPolicy`` plays that script
through the real agent loop in a real sandbox, and a ``LocalPolicy``
teacher-forces every turn: the prompt ids are exactly the ones the policy
would have been given, the reply's token ids are the ones it would have had to
generate, the behaviour log-probs come from a forward pass, and the policy
version is recorded. The task's verifier then scores the run, and only
trajectories with reward 1 are kept, so they are SFT data (error-masked: a
turn whose tool call failed is ``Chunk.failed`` and is left out of the loss)
and expert prefixes for initialized resampling.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.base import Model, ModelError, ModelResponse
from openale.agent.models.local import LocalPolicy
from openale.agent.tools.base import ToolRegistry
from openale.agent.tools.builtin import default_tools
from openale.agent.trajectory import Trajectory, save
from openale.bench.trial import task_spec
from openale.sandbox import Sandbox
from openale.sandbox.runtime import DockerRuntime
from openale.tasks.environment import EnvironmentBuilder
from openale.tasks.model import Task
from openale.tasks.verifier import verify

log = logging.getLogger(__name__)

FINAL_ANSWER = "Done."
_BOILERPLATE = ("#!", "set -e", "set -u", "set -o", "set -x")


class OracleError(RuntimeError):
    """A task's reference solution cannot be turned into an oracle trajectory."""


def oracle_agent_config(**overrides: Any) -> AgentConfig:
    """The agent settings oracle trajectories are recorded with (and rollouts should use).

    SFT data only helps when the policy later sees the same prompt: keep the
    system prompt, the action format and the tools identical between the
    oracle, the rollouts and the evaluation.
    """
    settings: dict[str, Any] = {"action_format": "bash_block", "max_turns": 8}
    settings.update(overrides)
    return AgentConfig(**settings)


def solution_commands(script: str) -> list[str]:
    """The commands of a solution script, one agent turn each.

    The shebang, ``set -euo pipefail`` and comments are dropped. A script whose
    lines do not each parse on their own (heredocs, loops over several lines,
    continuations) stays one command, so nothing is ever split mid-statement.
    """
    lines = [
        line.rstrip()
        for line in script.splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and not line.lstrip().startswith(_BOILERPLATE)
    ]
    if not lines:
        raise OracleError("the solution script has no commands")
    if all(_parses_alone(line) for line in lines):
        return lines
    return ["\n".join(lines)]


def _parses_alone(line: str) -> bool:
    if line.endswith("\\") or "<<" in line:
        return False
    check = subprocess.run(["bash", "-n"], input=line, text=True, capture_output=True)
    return check.returncode == 0


def oracle_replies(task: Task, final_answer: str = FINAL_ANSWER) -> list[str]:
    """The assistant turns that act out ``task``'s reference solution (``bash_block``)."""
    if task.solution is None:
        raise OracleError(f"{task.name} has no reference solution")
    commands = solution_commands(task.solution.read_text())
    return [f"```bash\n{cmd}\n```" for cmd in commands] + [final_answer]


class ScriptedPolicy:
    """A ``Model`` that says the scripted replies, recorded as ``policy`` generating them."""

    native_tools = False

    def __init__(self, policy: LocalPolicy, replies: Iterable[str]):
        self.policy = policy
        self.name = policy.name
        self._replies = list(replies)
        self._next = 0

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
        conversation_id: str | None = None,
    ) -> ModelResponse:
        if self._next >= len(self._replies):
            raise ModelError(f"the script's {len(self._replies)} replies are used up")
        reply = self._replies[self._next]
        self._next += 1
        return self.policy.teacher_force(messages, reply, conversation_id=conversation_id)

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return self.policy.count_tokens(messages)

    def end_conversation(self, conversation_id: str) -> None:
        self.policy.end_conversation(conversation_id)


def run_episode(
    task: Task,
    model: Model,
    *,
    config: AgentConfig | None = None,
    builder: EnvironmentBuilder | None = None,
    agent_name: str = "openale",
) -> Trajectory:
    """Run the agent with ``model`` on ``task`` in a fresh sandbox, verify, return the run.

    ``reward`` and ``verifier`` are filled in from the task's verifier; a
    verifier error leaves ``reward`` None and says why in ``verifier``.
    """
    builder = builder or EnvironmentBuilder()
    config = config or oracle_agent_config()
    image, _, _ = builder.build(task)
    workdir = builder.client.api.inspect_image(image)["Config"].get("WorkingDir") or "/"
    spec = task_spec(task, image, workdir, DockerRuntime(builder.settings).engine_cpus)
    agent = Agent(model, ToolRegistry(default_tools()), config, name=agent_name)
    with Sandbox.create(spec, settings=builder.settings) as sandbox:
        env = SandboxEnvironment(sandbox)
        try:
            traj = agent.run(task.instruction, env, task_id=task.name)
        finally:
            env.close()
        end = getattr(model, "end_conversation", None)
        if end is not None:  # the token state is only needed while the run lasts
            end(f"{traj.id}#{len(traj.compressions)}")
        verdict = verify(task, sandbox)
    traj.reward = verdict.reward if verdict.error is None else None
    traj.verifier = {
        "reward": verdict.reward,
        "passed": verdict.passed,
        "error": verdict.error,
        "exit_code": verdict.exit_code,
    }
    traj.metadata.update({"source": agent_name, "split": task.config.metadata.split})
    return traj


def run_scripted(
    task: Task,
    replies: list[str],
    policy: LocalPolicy,
    *,
    config: AgentConfig | None = None,
    builder: EnvironmentBuilder | None = None,
) -> Trajectory:
    """Play ``replies`` on ``task`` as ``policy`` (teacher-forced), verify, return the run."""
    model = ScriptedPolicy(policy, replies)
    return run_episode(task, model, config=config, builder=builder, agent_name="oracle")


def oracle_trajectories(
    tasks: Iterable[Task],
    policy: LocalPolicy,
    *,
    config: AgentConfig | None = None,
    concurrency: int = 2,
    out: str | Path | None = None,
    builder: EnvironmentBuilder | None = None,
    on_done: Callable[[Task, Trajectory | None], None] | None = None,
) -> list[Trajectory]:
    """Oracle trajectories of ``tasks`` that pass their verifier (reward 1), in task order.

    A task whose solution cannot be scripted or whose run does not pass is
    logged and left out. ``out``: also write them there as JSONL (replacing
    the file). ``on_done`` is called once per task (for progress bars).
    """
    tasks = list(tasks)
    builder = builder or EnvironmentBuilder()
    config = config or oracle_agent_config()
    lock = threading.Lock()

    def one(task: Task) -> Trajectory | None:
        traj = None
        try:
            traj = run_scripted(task, oracle_replies(task), policy, config=config, builder=builder)
            if not (traj.reward is not None and traj.reward >= 1.0):
                log.warning("oracle run of %s did not pass: %s", task.name, traj.verifier)
                traj = None
        except OracleError as e:
            log.warning("no oracle trajectory for %s: %s", task.name, e)
        if on_done is not None:
            with lock:
                on_done(task, traj)
        return traj

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        kept = [t for t in pool.map(one, tasks) if t is not None]
    if out is not None:
        save(kept, out, append=False)
    return kept
