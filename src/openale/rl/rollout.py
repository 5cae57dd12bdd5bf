"""The rollout stage: many agents act at once, each in its own sandbox, with the current policy.

``Rollout.run(tasks, round=r)`` runs ``group_size`` attempts per task on a
thread pool. Every attempt gets its own sandbox from the task's environment
image, an ``Agent`` whose model is the shared policy behind a thin
``SeededModel`` (a ``LocalPolicy`` batches the generations of all running
agents), and the task's verifier afterwards; the reward stage then sets the
final reward. Seeds are derived from ``(seed, round, task, attempt)`` and
passed into every generation, so a rollout is reproducible at temperature > 0.

Harness failures (an image that does not build, a sandbox that will not
start, a verifier that crashes) become episodes marked ``error``; they never
end the batch. ``Episode.trainable`` says which episodes a trainer may use.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from openale.agent.environment import SandboxEnvironment
from openale.agent.loop import Agent, AgentConfig
from openale.agent.models.base import Model, ModelResponse
from openale.agent.tools.base import ToolRegistry
from openale.agent.trajectory import ActionFormat, Trajectory
from openale.bench.trial import task_spec
from openale.rl.reward import RewardConfig, RewardStage
from openale.sandbox import Sandbox, SandboxSettings
from openale.sandbox.runtime import DockerRuntime
from openale.tasks.environment import EnvironmentBuilder
from openale.tasks.model import Task
from openale.tasks.verifier import VerifierResult, verify

VERIFIER_LOG_CHARS = 4000  # kept on the episode; the full log is the verifier's business


class RolloutConfig(BaseModel):
    """How the rollout stage acts; defaults suit SmolLM2-135M on the toy suite on a laptop."""

    group_size: int = Field(4, ge=1, description="attempts per task (G)")
    max_turns: int = Field(4, ge=1)
    max_new_tokens: int = Field(192, ge=1, description="per generation (one turn)")
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    action_format: ActionFormat = Field("bash_block", description="small models do best here")
    concurrency: int = Field(4, ge=1, description="episodes running at once")
    seed: int = 0
    episode_timeout_s: float = Field(300.0, gt=0, description="agent time budget per episode")
    tool_timeout_s: float = Field(60.0, gt=0)
    context_window: int = Field(8192, ge=256, description="compression starts at 80% of it")
    tools: list[str] | None = Field(None, description="tool names; None: all built-ins")


def derive_seed(*parts: Any) -> int:
    """A stable 62-bit seed from ``parts`` (same parts, same seed, on any machine)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def episode_seed(seed: int, round: int, task: str, attempt: int) -> int:
    return derive_seed("episode", seed, round, task, attempt)


def group_id(round: int, task: str, anchor: int | None = None) -> str:
    """Episodes of one group share it: same round, same task (and same anchor)."""
    return f"r{round}/{task}" + (f"/a{anchor}" if anchor is not None else "")


class SeededModel:
    """One episode's view of a shared model: every call gets the next seed of the episode.

    Sampling settings (``seed``, ``temperature``, ``top_p``, ``max_new_tokens``)
    are passed only to models whose ``complete`` takes them (``LocalPolicy``);
    a replay or HTTP model is called as it is.
    """

    def __init__(
        self,
        inner: Model,
        seed: int,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
    ):
        self.inner = inner
        self.seed = seed
        self.name = inner.name
        self.native_tools = inner.native_tools
        self.calls = 0
        self.conversations: set[str] = set()
        accepted = set(inspect.signature(inner.complete).parameters)
        wanted = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens}
        self._sampling = {k: v for k, v in wanted.items() if v is not None and k in accepted}
        self._seeded = "seed" in accepted

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        stop: list[str] | None = None,
        conversation_id: str | None = None,
    ) -> ModelResponse:
        extra = dict(self._sampling)
        if self._seeded:
            extra["seed"] = derive_seed("call", self.seed, self.calls)
        self.calls += 1
        if conversation_id:
            self.conversations.add(conversation_id)
        return self.inner.complete(
            messages, tools=tools, stop=stop, conversation_id=conversation_id, **extra
        )

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return self.inner.count_tokens(messages)

    def release(self) -> None:
        """Forget this episode's token sequences in the shared policy (they are recorded)."""
        end = getattr(self.inner, "end_conversation", None)
        if end is not None:
            for cid in self.conversations:
                end(cid)
        self.conversations.clear()


class Episode(BaseModel):
    """One attempt at one task: the trajectory, the verdict, the reward and where time went."""

    task: str
    group: str
    attempt: int
    round: int = 0
    seed: int = 0
    split: str | None = None
    trajectory: Trajectory | None = None
    verifier: VerifierResult | None = None
    reward: float | None = None
    error: str | None = None
    error_stage: str | None = None  # build | sandbox | prepare | agent | verify | reward
    traceback: str | None = Field(None, repr=False)  # of a harness error, for debugging
    sandbox_s: float = 0.0  # image lookup/build, sandbox start, and any prefix preparation
    model_s: float = 0.0  # generation, summed over turns (includes waiting for a batch)
    tools_s: float = 0.0
    verify_s: float = 0.0
    total_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and self.verifier is not None and self.verifier.passed

    @property
    def trainable(self) -> bool:
        """No harness error, and a trajectory whose own chunks carry token ids.

        Chunks of an expert prefix (initialized resampling) are not the policy's own.
        """
        traj = self.trajectory
        if self.error is not None or traj is None:
            return False
        own = traj.chunks[int(traj.metadata.get("expert_prefix_chunks", 0)) :]
        return bool(own) and all(c.token_ids is not None for c in own)


@dataclass
class EpisodeRequest:
    """What one episode starts from: by default a fresh sandbox and an empty trajectory.

    ``sandbox`` builds the sandbox instead of the task image (e.g. a fork of a
    snapshot); ``prepare`` runs in the environment before the agent (e.g. a
    prefix replay); ``resume`` is a trajectory the agent continues (its copy
    is taken, the original is left alone).
    """

    task: Task
    attempt: int
    group: str
    seed: int
    round: int = 0
    resume: Trajectory | None = None
    sandbox: Callable[[], Sandbox] | None = None
    prepare: Callable[[SandboxEnvironment], None] | None = None
    max_turns: int | None = None  # None: the config's
    metadata: dict[str, Any] = field(default_factory=dict)


class Rollout:
    """Runs agents with one (shared) model on tasks, G attempts each, and scores them."""

    def __init__(
        self,
        model: Model,
        config: RolloutConfig | None = None,
        *,
        reward: RewardStage | RewardConfig | None = None,
        builder: EnvironmentBuilder | None = None,
        settings: SandboxSettings | None = None,
    ):
        self.model = model
        self.config = config or RolloutConfig()
        self.reward = reward if isinstance(reward, RewardStage) else RewardStage(reward)
        self.builder = builder or EnvironmentBuilder(settings)
        self.settings = self.builder.settings
        self._workdirs: dict[str, str] = {}
        self._engine_cpus: int | None = None
        self._lock = threading.Lock()

    # -- building blocks --------------------------------------------------------------

    def tools(self) -> ToolRegistry:
        from openale.agent.tools.builtin import default_tools

        tools = ToolRegistry(default_tools())
        return tools.subset(self.config.tools) if self.config.tools is not None else tools

    def agent(self, model: Model, max_turns: int | None = None) -> Agent:
        """An agent as the rollout runs it (also used to build expert trajectories)."""
        cfg = self.config
        return Agent(
            model,
            self.tools(),
            AgentConfig(
                max_turns=max_turns or cfg.max_turns,
                max_time_s=cfg.episode_timeout_s,
                action_format=cfg.action_format,
                tool_timeout_s=cfg.tool_timeout_s,
                context_window=cfg.context_window,
            ),
            name="openale-rl",
        )

    def seeded(self, seed: int) -> SeededModel:
        cfg = self.config
        return SeededModel(
            self.model,
            seed,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
        )

    def image(self, task: Task) -> tuple[str, str]:
        """The task's environment image (built once, cached) and its working directory."""
        image, _, _ = self.builder.build(task)
        with self._lock:
            if image not in self._workdirs:
                config = self.builder.client.api.inspect_image(image)["Config"]
                self._workdirs[image] = config.get("WorkingDir") or "/"
            if self._engine_cpus is None:
                self._engine_cpus = DockerRuntime(self.settings).engine_cpus
            return image, self._workdirs[image]

    def fresh_sandbox(self, task: Task) -> Sandbox:
        image, workdir = self.image(task)
        spec = task_spec(task, image, workdir, self._engine_cpus or 1)
        return Sandbox.create(spec, settings=self.settings)

    # -- running ----------------------------------------------------------------------

    def requests(self, tasks: Iterable[Task], *, round: int = 0) -> list[EpisodeRequest]:
        """``group_size`` plain attempts per task, seeded from (seed, round, task, attempt)."""
        return [
            EpisodeRequest(
                task=task,
                attempt=a,
                group=group_id(round, task.name),
                seed=episode_seed(self.config.seed, round, task.name, a),
                round=round,
            )
            for task in tasks
            for a in range(self.config.group_size)
        ]

    def run(self, tasks: Iterable[Task], *, round: int = 0, progress: bool = True) -> list[Episode]:
        """Roll out ``group_size`` attempts of every task; episodes in request order."""
        return self.run_requests(self.requests(tasks, round=round), progress=progress)

    def run_requests(
        self, requests: list[EpisodeRequest], *, progress: bool = True, label: str = "rollout"
    ) -> list[Episode]:
        """Run ``requests`` ``concurrency`` at a time; episodes come back in request order."""
        results: list[Episode | None] = [None] * len(requests)
        passed = errors = 0
        with (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeElapsedColumn(),
                disable=not progress,
            ) as bar,
            ThreadPoolExecutor(max_workers=self.config.concurrency) as pool,
        ):
            shown = bar.add_task(label, total=len(requests), stats="")
            futures = {pool.submit(self.run_episode, r): i for i, r in enumerate(requests)}
            for future in as_completed(futures):
                ep = future.result()  # run_episode catches everything itself
                results[futures[future]] = ep
                passed += ep.passed
                errors += ep.error is not None
                bar.update(shown, advance=1, stats=f"passed {passed}  errors {errors}")
        return [ep for ep in results if ep is not None]

    def run_episode(self, req: EpisodeRequest) -> Episode:
        """One episode; any failure of the harness is recorded on it, never raised."""
        task = req.task
        ep = Episode(
            task=task.name,
            group=req.group,
            attempt=req.attempt,
            round=req.round,
            seed=req.seed,
            split=task.config.metadata.split,
        )
        started = time.monotonic()
        stage, sandbox, model = "build", None, None
        try:
            t = time.monotonic()
            if req.sandbox is not None:
                stage = "sandbox"
                sandbox = req.sandbox()
            else:
                self.image(task)
                stage = "sandbox"
                sandbox = self.fresh_sandbox(task)
            env = SandboxEnvironment(sandbox)
            try:
                if req.prepare is not None:
                    stage = "prepare"
                    req.prepare(env)
                ep.sandbox_s = time.monotonic() - t
                stage = "agent"
                model = self.seeded(req.seed)
                agent = self.agent(model, req.max_turns)
                resume = copy.deepcopy(req.resume) if req.resume is not None else None
                instruction = None if resume is not None else task.instruction
                traj = agent.run(instruction, env, task_id=task.name, resume=resume)
            finally:
                env.close()
            traj.metadata.update(
                req.metadata,
                group=req.group,
                round=req.round,
                attempt=req.attempt,
                seed=req.seed,
            )
            ep.trajectory = traj
            ep.model_s = sum(c.model_s for c in traj.chunks)
            ep.tools_s = sum(c.tools_s for c in traj.chunks)

            stage = "verify"
            verdict = verify(task, sandbox)
            verdict.log = verdict.log[-VERIFIER_LOG_CHARS:]
            ep.verify_s = verdict.duration_s
            ep.verifier = verdict
            traj.verifier = verdict.model_dump(exclude={"log"})
            if verdict.error:
                ep.error, ep.error_stage = verdict.error, "verify"
        except Exception as e:  # a broken harness fails this episode, not the batch
            ep.error, ep.error_stage = f"{type(e).__name__}: {e}", stage
            ep.traceback = traceback.format_exc()
        finally:
            if model is not None:
                model.release()
            if sandbox is not None:
                try:
                    sandbox.close()
                except Exception as e:  # the episode is done; a stuck container is the reaper's
                    ep.error = ep.error or f"closing the sandbox failed: {e}"
                    ep.error_stage = ep.error_stage or "sandbox"
        try:
            self.reward(ep)
        except Exception as e:
            ep.error, ep.error_stage = f"{type(e).__name__}: {e}", "reward"
        ep.total_s = time.monotonic() - started
        return ep


def summarize(episodes: list[Episode]) -> dict[str, float]:
    """Pass rate, mean reward, error count and time split of a batch of episodes."""
    n = max(1, len(episodes))
    rewards = [ep.reward for ep in episodes if ep.reward is not None]
    return {
        "episodes": len(episodes),
        "pass_rate": sum(ep.passed for ep in episodes) / n,
        "mean_reward": sum(rewards) / max(1, len(rewards)),
        "errors": sum(ep.error is not None for ep in episodes),
        "turns": sum(len(ep.trajectory.chunks) for ep in episodes if ep.trajectory) / n,
        "sandbox_s": sum(ep.sandbox_s for ep in episodes) / n,
        "model_s": sum(ep.model_s for ep in episodes) / n,
        "verify_s": sum(ep.verify_s for ep in episodes) / n,
    }
