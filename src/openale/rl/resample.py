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
Experts, anchors, truncation and prefix replay are in ``rl.experts``; every
restart is an episode of the rollout (the bench's episode runner), its
sandbox a fork (``sandbox`` factory) or a fresh one replayed into (``prepare``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from openale.agent.environment import SandboxEnvironment
from openale.agent.trajectory import Chunk, ToolResult, Trajectory
from openale.bench.seeded import derive_seed
from openale.rl.experts import (
    PREFIX_KEY,
    ResampleError,
    choose_anchors,
    fill_results,
    replay,
    truncate,
)
from openale.rl.packing import Sample, samples_from_trajectory
from openale.rl.rollout import AGENT_NAME, Episode, EpisodeRequest, Rollout, group_id
from openale.sandbox import Sandbox, Snapshot, delete_snapshot
from openale.tasks.model import Task


class ResampleConfig(BaseModel):
    mode: Literal["fork", "replay"] = "fork"
    num_anchors: int = Field(2, ge=1, description="anchors per expert, evenly spread")
    anchors: list[int] | None = Field(None, description="explicit anchors (prefix lengths)")
    restarts: int | None = Field(None, ge=1, description="per anchor; None: group_size")
    replay_timeout_s: float = Field(120.0, gt=0, description="per replayed tool call")


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
            sandbox = self.rollout.runner.sandbox(task)
            env = SandboxEnvironment(sandbox)
            try:
                done = 0
                for k in anchors:
                    chunks = expert.chunks[done:k]
                    differ += fill_results(chunks, self._replay(chunks, env))
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
                resume.agent, resume.model = AGENT_NAME, self.rollout.model.name
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
            fill_results(resume.chunks, self._replay(resume.chunks, env))

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
