"""Oracle trajectories: a task's reference solution, acted out by the real agent.

The reference solution (``solution/solve.sh``) becomes a script of assistant
turns in the ``bash_block`` action format, one fenced ```bash block per
command, then a short final answer. A ``ScriptedPolicy`` plays that script
through the real agent loop in a real sandbox (an episode of the bench's
``EpisodeRunner``), and a ``LocalPolicy`` teacher-forces every turn: the
prompt ids are exactly the ones the policy would have been given, the reply's
token ids are the ones it would have had to generate, the behaviour log-probs
come from a forward pass, and the policy version is recorded. The task's
verifier then scores the run, and only trajectories with reward 1 are kept,
so they are SFT data (error-masked: a turn whose tool call failed is
``Chunk.failed`` and is left out of the loss) and expert prefixes for
initialized resampling.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from openale.agent.loop import AgentConfig
from openale.agent.models.base import ModelError, ModelResponse
from openale.agent.models.local import LocalPolicy
from openale.agent.trajectory import Trajectory, save
from openale.bench.episode import EpisodeRunner
from openale.bench.openale_agent import LoopAgent
from openale.tasks.model import Task

log = logging.getLogger(__name__)

FINAL_ANSWER = "Done."
# A line that only sets shell options: ``set -euo pipefail``, ``set +x``, ``set -o errexit``.
_SET_OPTIONS = re.compile(r"^\s*set(\s+(?:[-+][A-Za-z]*o\s+\w+|[-+][A-Za-z]+))+\s*$")
_HEREDOC = re.compile(r"(?<!<)<<(?!<)(-?)\s*(['\"]?)([A-Za-z_][A-Za-z_0-9]*)\2")


class OracleError(ValueError):
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

    Lines that only set shell options (``set -e``, ``set -euo pipefail``,
    ``set -x``, ``set +x``) are dropped: they change how a script runs, not
    what it does, and in the agent's persistent shell ``set -e`` would end the
    session at the first failing command and ``set -x`` trace every later one.
    ``set -- args`` (positional parameters) is a command and stays.

    When every other non-comment line parses on its own, each is one turn.
    Otherwise (heredocs, loops over several lines, continuations) the script
    is one turn, from its first command on, verbatim except for the option
    lines outside heredocs: a heredoc's body (a written file's shebang,
    comments, blank lines, its own ``set -e``) is content and is kept.
    """
    lines = script.splitlines()
    code = _code_lines(lines)
    commands = [
        line
        for line, is_code in zip(lines, code, strict=True)
        if is_code and line.strip() and not line.lstrip().startswith("#")
        if not _SET_OPTIONS.match(line)
    ]
    if not commands:
        raise OracleError("the solution script has no commands")
    bash = shutil.which("bash")
    if bash is not None and all(_parses_alone(bash, line) for line in commands):
        return commands
    kept = [
        line
        for line, is_code in zip(lines, code, strict=True)
        if not (is_code and _SET_OPTIONS.match(line))
    ]
    first = kept.index(commands[0])
    return ["\n".join(kept[first:]).rstrip()]


def _code_lines(lines: list[str]) -> list[bool]:
    """Per line: shell code (True) or the body of a heredoc (False)."""
    out: list[bool] = []
    pending: list[tuple[bool, str]] = []  # (tabs stripped, delimiter) of open heredocs
    for line in lines:
        if pending:
            out.append(False)
            strip_tabs, word = pending[0]
            if (line.lstrip("\t") if strip_tabs else line) == word:
                pending.pop(0)
            continue
        out.append(True)
        pending += [(m.group(1) == "-", m.group(3)) for m in _HEREDOC.finditer(line)]
    return out


def _parses_alone(bash: str, line: str) -> bool:
    if line.rstrip().endswith("\\") or "<<" in line:
        return False
    check = subprocess.run([bash, "-n"], input=line, text=True, capture_output=True)
    return check.returncode == 0


def oracle_commands(task: Task) -> list[str]:
    """``task``'s reference solution as shell commands, one agent turn each.

    A solution that needs files besides its script cannot be acted out (the
    agent has only its commands), so it is an ``OracleError`` too.
    """
    if task.solution is None:
        raise OracleError(f"{task.name} has no reference solution (solution/solve.sh)")
    if task.solution_dir is not None:
        extra = [p for p in task.solution_dir.rglob("*") if p.is_file() and p != task.solution]
        if extra:
            raise OracleError(
                f"{task.name}: the solution needs {len(extra)} more file(s) besides "
                f"{task.solution.name}"
            )
    try:
        return solution_commands(task.solution.read_text())
    except OracleError as e:
        raise OracleError(f"{task.name}: {e}") from None


def oracle_replies(task: Task, final_answer: str = FINAL_ANSWER) -> list[str]:
    """The assistant turns that act out ``task``'s reference solution (``bash_block``)."""
    return [f"```bash\n{cmd}\n```" for cmd in oracle_commands(task)] + [final_answer]


class ScriptedPolicy:
    """A ``Model`` that says the scripted replies, recorded as ``policy`` generating them."""

    native_tools = False

    def __init__(self, policy: LocalPolicy, replies: Iterable[str]):
        self.policy = policy
        self.name = policy.name
        self._replies = list(replies)
        self._next = 0
        self._conversations: set[str] = set()

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
        if conversation_id:
            self._conversations.add(conversation_id)
        return self.policy.teacher_force(messages, reply, conversation_id=conversation_id)

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return self.policy.count_tokens(messages)

    def release(self) -> None:
        """Forget the run's token sequences in the policy (the trajectory keeps them)."""
        for cid in self._conversations:
            self.policy.end_conversation(cid)
        self._conversations.clear()


def run_scripted(
    task: Task,
    replies: list[str],
    policy: LocalPolicy,
    *,
    config: AgentConfig | None = None,
    runner: EpisodeRunner | None = None,
) -> Trajectory:
    """Play ``replies`` on ``task`` as ``policy`` (teacher-forced), verify, return the run.

    ``reward`` and ``verifier`` are filled in from the task's verifier; a
    verifier error leaves ``reward`` None and says why in ``verifier``. A run
    the harness could not finish (no image, no sandbox) is an ``OracleError``.
    """
    runner = runner or EpisodeRunner()
    agent = LoopAgent(
        ScriptedPolicy(policy, replies), config or oracle_agent_config(), name="oracle"
    )
    metadata = {"source": "oracle", "split": task.config.metadata.split}
    ep = runner.run(task, agent, metadata=metadata)
    if ep.trajectory is None:
        raise OracleError(f"the oracle run of {task.name} failed ({ep.error_stage}): {ep.error}")
    return ep.trajectory


def oracle_trajectories(
    tasks: Iterable[Task],
    policy: LocalPolicy,
    *,
    config: AgentConfig | None = None,
    concurrency: int = 2,
    out: str | Path | None = None,
    runner: EpisodeRunner | None = None,
    on_done: Callable[[Task, Trajectory | None], None] | None = None,
) -> list[Trajectory]:
    """Oracle trajectories of ``tasks`` that pass their verifier (reward 1), in task order.

    A task whose solution cannot be scripted or whose run does not pass is
    logged and left out. ``out``: also write them there as JSONL (replacing
    the file). ``on_done`` is called once per task (for progress bars).
    """
    tasks = list(tasks)
    runner = runner or EpisodeRunner()
    config = config or oracle_agent_config()
    lock = threading.Lock()

    def one(task: Task) -> Trajectory | None:
        traj = None
        try:
            traj = run_scripted(task, oracle_replies(task), policy, config=config, runner=runner)
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
