"""Initialized resampling: restart rollouts from anchor chunks of a successful trajectory.

A hard task rarely succeeds from scratch, so its groups carry no signal. Given
an expert trajectory that succeeded (self-sampled, or the task's reference
solution as ``oracle_trajectory``), the policy is restarted after the expert's
first ``k`` chunks ("anchor" k) and has to finish the job itself.

Two ways to put a restart's sandbox into the state after the prefix:

- ``fork`` (default): one sandbox replays the prefix's tool calls once,
  ``snapshot()`` after each anchor, and every restart is a
  ``Sandbox.fork`` of its anchor's snapshot. The prefix runs once per task,
  not once per restart. Only the filesystem is carried over: the restart's
  shell is a new one (its working directory and variables are fresh).
- ``replay``: every restart gets a fresh sandbox and replays the prefix in it
  first (no snapshots; for runtimes that cannot commit, or prefixes whose
  shell state matters).

Each restart resumes a copy of the expert trajectory truncated at the anchor,
so its chunks ``[0, k)`` are the expert's and ``[k, K)`` the policy's. The
trajectory says so in ``metadata["expert_prefix_chunks"] = k`` (and
``metadata["resample"]``); ``continuation_samples`` turns it into RL rows over
the policy's chunks only, and ``imitation_samples`` turns the expert prefix
into rows marked ``Sample.imitation`` for the trainer's imitation term.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from openale.agent.environment import SandboxEnvironment
from openale.agent.tools.base import ToolArgumentError, ToolContext, ToolRegistry
from openale.agent.trajectory import ActionFormat, Chunk, ToolCall, ToolResult, Trajectory
from openale.rl.packing import Sample, samples_from_trajectory
from openale.rl.rollout import Episode, EpisodeRequest, Rollout, derive_seed, group_id
from openale.sandbox import Sandbox, Snapshot, delete_snapshot
from openale.tasks.model import Task

PREFIX_KEY = "expert_prefix_chunks"


class ResampleError(ValueError):
    """The expert trajectory cannot be resampled from (no anchors, no solution, ...)."""


class ResampleConfig(BaseModel):
    mode: Literal["fork", "replay"] = "fork"
    num_anchors: int = Field(2, ge=1, description="anchors per expert, evenly spread")
    anchors: list[int] | None = Field(None, description="explicit anchors (prefix lengths)")
    restarts: int | None = Field(None, ge=1, description="per anchor; None: group_size")
    replay_timeout_s: float = Field(120.0, gt=0, description="per replayed tool call")


# -- experts --------------------------------------------------------------------------


def _action_text(command: str, fmt: ActionFormat) -> str:
    if fmt == "bash_block":
        return f"```bash\n{command}\n```"
    if fmt == "tool_call_tags":
        import json

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


def solution_commands(script: str) -> list[str]:
    """``solve.sh`` as shell commands: one per line when every line stands alone, else one.

    ``set -e`` style lines are dropped: in the agent's persistent shell an
    error would end the session instead of the script.
    """
    lines = [
        line
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not _is_set_option(line)
    ]
    bash = shutil.which("bash")
    if bash and all(_complete(bash, line) for line in lines):
        return lines
    return ["\n".join(lines)] if lines else []


def _is_set_option(line: str) -> bool:
    words = line.split()
    return len(words) >= 2 and words[0] == "set" and words[1].startswith(("-", "+"))


def _complete(bash: str, line: str) -> bool:
    """Whether ``line`` parses on its own (no open quote, loop, heredoc or continuation)."""
    if line.rstrip().endswith("\\") or "<<" in line:
        return False
    return subprocess.run([bash, "-n", "-c", line], capture_output=True).returncode == 0


def oracle_trajectory(task: Task, rollout: Rollout) -> Trajectory:
    """The task's reference solution as an expert trajectory the rollout's agent could resume."""
    if task.solution is None:
        raise ResampleError(f"{task.name} has no reference solution (solution/solve.sh)")
    if task.solution_dir is not None:
        extra = [p for p in task.solution_dir.rglob("*") if p.is_file() and p != task.solution]
        if extra:
            raise ResampleError(
                f"{task.name}: the solution needs {len(extra)} more file(s) besides "
                f"{task.solution.name}; use a self-sampled expert for it"
            )
    commands = solution_commands(task.solution.read_text())
    if not commands:
        raise ResampleError(f"{task.name}: {task.solution} runs no command")
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


# -- replaying a prefix ---------------------------------------------------------------


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


def _fill_results(chunks: Sequence[Chunk], replayed: list[list[ToolResult]]) -> int:
    """Give chunks without results the replayed ones; count chunks whose exit codes differ."""
    differ = 0
    for chunk, res in zip(chunks, replayed, strict=True):
        if not chunk.tool_results:
            chunk.tool_results = res
        elif [r.exit_code for r in chunk.tool_results] != [r.exit_code for r in res]:
            differ += 1
    return differ


# -- the resampler --------------------------------------------------------------------


@dataclass
class ResampleBatch:
    """The episodes of one resampling batch and what they started from."""

    episodes: list[Episode]
    experts: dict[str, Trajectory]  # task name -> expert (tool results filled in)
    anchors: dict[str, list[int]]
    prepare_s: float = 0.0  # replaying prefixes and taking snapshots (fork mode)
    replay_mismatches: int = 0  # expert chunks whose replayed exit codes differed
    errors: dict[str, str] = field(default_factory=dict)  # task -> why it was skipped


class Resampler:
    """Restarts a rollout's agents from anchors of expert trajectories, many at once."""

    def __init__(self, rollout: Rollout, config: ResampleConfig | None = None):
        self.rollout = rollout
        self.config = config or ResampleConfig()

    def run(
        self,
        experts: Sequence[tuple[Task, Trajectory]],
        *,
        round: int = 0,
        progress: bool = True,
    ) -> ResampleBatch:
        """All restarts of all experts' anchors in one batch of the rollout's thread pool."""
        import time

        cfg, started = self.config, time.monotonic()
        batch = ResampleBatch(episodes=[], experts={}, anchors={})
        plans: list[tuple[Task, Trajectory, list[int]]] = []
        for task, expert in experts:
            try:
                anchors = cfg.anchors or choose_anchors(expert, cfg.num_anchors)
                bad = [k for k in anchors if not 1 <= k < len(expert.chunks)]
                if bad:
                    raise ResampleError(f"anchors {bad} are outside 1..{len(expert.chunks) - 1}")
            except ResampleError as e:
                batch.errors[task.name] = str(e)
                continue
            if expert.action_format != self.rollout.config.action_format:
                batch.errors[task.name] = (
                    f"the expert acts in {expert.action_format}, the rollout in "
                    f"{self.rollout.config.action_format}"
                )
                continue
            plans.append((task, expert.model_copy(deep=True), sorted(set(anchors))))

        snapshots: dict[tuple[str, int], Snapshot] = {}
        try:
            if cfg.mode == "fork" and plans:
                workers = min(len(plans), self.rollout.config.concurrency)
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    done = pool.map(lambda p: self._snapshot_plan(*p), plans)
                    for (task, _, _), (snaps, differ, error) in zip(plans, done, strict=True):
                        batch.replay_mismatches += differ
                        if error:
                            batch.errors[task.name] = error
                        snapshots.update({(task.name, k): s for k, s in snaps.items()})
            plans = [p for p in plans if p[0].name not in batch.errors]
            batch.prepare_s = time.monotonic() - started
            requests = [
                req
                for task, expert, anchors in plans
                for req in self._requests(task, expert, anchors, snapshots, round)
            ]
            for task, expert, anchors in plans:
                batch.experts[task.name], batch.anchors[task.name] = expert, anchors
            batch.episodes = self.rollout.run_requests(
                requests, progress=progress, label="resample"
            )
        finally:
            for snap in snapshots.values():
                delete_snapshot(snap, self.rollout.settings)
        return batch

    def _snapshot_plan(
        self, task: Task, expert: Trajectory, anchors: list[int]
    ) -> tuple[dict[int, Snapshot], int, str | None]:
        """Replay ``expert``'s prefix once, snapshotting after each anchor (fills results in)."""
        snaps: dict[int, Snapshot] = {}
        differ, sandbox = 0, None
        try:
            sandbox = self.rollout.fresh_sandbox(task)
            env = SandboxEnvironment(sandbox)
            try:
                done = 0
                for k in anchors:
                    chunks = expert.chunks[done:k]
                    differ += _fill_results(chunks, self._replay(chunks, env))
                    snaps[k] = sandbox.snapshot()
                    done = k
            finally:
                env.close()
        except Exception as e:  # this task is skipped; the others go on
            for snap in snaps.values():
                delete_snapshot(snap, self.rollout.settings)
            return {}, differ, f"preparing the snapshots failed: {type(e).__name__}: {e}"
        finally:
            if sandbox is not None:
                sandbox.close()
        return snaps, differ, None

    def _replay(self, chunks: Sequence[Chunk], env: SandboxEnvironment) -> list[list[ToolResult]]:
        return replay(chunks, env, self.rollout.tools(), self.config.replay_timeout_s)

    def _requests(
        self,
        task: Task,
        expert: Trajectory,
        anchors: list[int],
        snapshots: dict[tuple[str, int], Snapshot],
        round: int,
    ) -> list[EpisodeRequest]:
        rc, mode = self.rollout.config, self.config.mode
        restarts = self.config.restarts or rc.group_size
        out = []
        for k in anchors:
            for a in range(restarts):
                resume = truncate(expert, k, mode)
                resume.agent, resume.model = "openale-rl", self.rollout.model.name
                req = EpisodeRequest(
                    task=task,
                    attempt=a,
                    group=group_id(round, task.name, anchor=k),
                    seed=derive_seed("resample", rc.seed, round, task.name, k, a),
                    round=round,
                    resume=resume,
                    max_turns=max(1, rc.max_turns - k),
                    metadata={"anchor": k},
                )
                if mode == "fork":
                    req.sandbox = self._forker(snapshots[(task.name, k)])
                else:
                    req.prepare = self._replayer(resume)
                out.append(req)
        return out

    def _forker(self, snapshot: Snapshot):
        settings = self.rollout.settings
        return lambda: Sandbox.fork(snapshot, 1, settings=settings)[0]

    def _replayer(self, resume: Trajectory):
        def prepare(env: SandboxEnvironment) -> None:
            # ``resume`` is this request's own copy: filling its results in is safe.
            _fill_results(resume.chunks, self._replay(resume.chunks, env))

        return prepare


# -- training rows --------------------------------------------------------------------


def prefix_length(traj: Trajectory) -> int:
    return int(traj.metadata.get(PREFIX_KEY, 0))


def continuation_samples(traj: Trajectory, **kwargs: Any) -> list[Sample]:
    """RL rows over the chunks the policy wrote (all of them for a plain trajectory).

    The restart's first chunk tokenized the whole prompt, expert prefix
    included, so its row starts there with the prefix as (unmasked) context.
    Chunk indices count from the restart; IPA's return depends only on the
    distance to the last chunk, which is the same either way.
    """
    k = prefix_length(traj)
    if k == 0:
        return samples_from_trajectory(traj, **kwargs)
    own = traj.model_copy(update={"chunks": traj.chunks[k:]})
    return samples_from_trajectory(own, **kwargs)


def imitation_samples(
    expert: Trajectory,
    *,
    upto: int | None = None,
    policy: Any = None,
    reward: float = 1.0,
    group: str | None = None,
) -> list[Sample]:
    """Rows over the expert's first ``upto`` chunks, marked ``imitation``.

    A self-sampled expert has its token ids; an oracle's are made with
    ``policy``'s chat template and tokenizer (a ``LocalPolicy``).
    """
    prefix = expert.model_copy(deep=True)
    prefix.chunks = prefix.chunks[: len(prefix.chunks) if upto is None else upto]
    if any(c.token_ids is None for c in prefix.chunks):
        if policy is None:
            raise ResampleError(
                f"expert {expert.id} has no token ids: pass the LocalPolicy to tokenize it"
            )
        tokenize_expert(prefix, policy)
    samples = samples_from_trajectory(
        prefix, reward=reward, group=group or f"imitation/{expert.task_id}"
    )
    for s in samples:
        s.imitation = True
    return samples


def tokenize_expert(traj: Trajectory, policy: Any) -> Trajectory:
    """Give every chunk of ``traj`` token ids as ``policy`` would have seen and written them.

    Log-probs are zeros and the policy version is unknown (None): these
    tokens were not sampled from the policy.
    """
    tokenizer = policy.tokenizer

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    head, done = traj.head(), ""
    for i, chunk in enumerate(traj.chunks):
        msgs = head + traj.turn_messages(0, i)
        prompt = policy.render(msgs)
        reply = policy.render([*msgs, {"role": "assistant", "content": chunk.text}], False)
        if not reply.startswith(prompt):
            raise ResampleError(f"chunk {i} of {traj.id} does not render after its prompt")
        # The newline after end-of-turn belongs to the next prompt, as when the policy acts.
        reply = reply[len(prompt) :].rstrip("\n")
        continues = i > 0 and prompt.startswith(done)
        chunk.prompt_token_ids = encode(prompt[len(done) :] if continues else prompt)
        chunk.prompt_continues = continues
        chunk.token_ids = encode(reply)
        chunk.logprobs = [0.0] * len(chunk.token_ids)
        chunk.policy_version = None
        done = prompt + reply
    return traj
