"""The rollout stage: many agents act at once, each in its own sandbox, with the current policy.

``Rollout.run(tasks, round=r)`` runs ``group_size`` attempts per task on a
thread pool. Every attempt is an episode of the bench's ``EpisodeRunner``: its
own sandbox from the task's environment image, a ``LoopAgent`` whose model is
the shared policy behind a thin ``SeededModel`` (a ``LocalPolicy`` batches the
generations of all running agents), and the task's verifier afterwards; the
reward stage then sets the final reward. Seeds are derived from ``(seed, round, task, attempt)`` and
passed into every generation, so a rollout is reproducible at temperature > 0.

Harness failures (an image that does not build, a sandbox that will not
start, a verifier that crashes) become episodes marked ``error``; they never
end the batch. ``Episode.trainable`` says which episodes a trainer may use.
"""

from __future__ import annotations

import time
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
from openale.agent.models.base import Model
from openale.agent.tools.base import ToolRegistry
from openale.agent.trajectory import ActionFormat, Trajectory
from openale.bench.episode import EpisodeRunner
from openale.bench.openale_agent import LoopAgent
from openale.bench.seeded import SeededModel, derive_seed
from openale.rl.reward import RewardConfig, RewardStage
from openale.sandbox import Sandbox, SandboxSettings
from openale.tasks.environment import EnvironmentBuilder
from openale.tasks.model import Task
from openale.tasks.verifier import VerifierResult

VERIFIER_LOG_CHARS = 4000  # kept on the episode; the full log is the verifier's business
AGENT_NAME = "openale-rl"


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


def episode_seed(seed: int, round: int, task: str, attempt: int) -> int:
    return derive_seed("episode", seed, round, task, attempt)


def group_id(round: int, task: str, anchor: int | None = None) -> str:
    """Episodes of one group share it: same round, same task (and same anchor)."""
    return f"r{round}/{task}" + (f"/a{anchor}" if anchor is not None else "")


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
        self.runner = EpisodeRunner(builder, settings)
        self.settings = self.runner.settings

    # -- building blocks --------------------------------------------------------------

    def tools(self) -> ToolRegistry:
        from openale.agent.tools.builtin import default_tools

        tools = ToolRegistry(default_tools())
        return tools.subset(self.config.tools) if self.config.tools is not None else tools

    def agent_config(self, max_turns: int | None = None) -> AgentConfig:
        cfg = self.config
        return AgentConfig(
            max_turns=max_turns or cfg.max_turns,
            max_time_s=cfg.episode_timeout_s,
            action_format=cfg.action_format,
            tool_timeout_s=cfg.tool_timeout_s,
            context_window=cfg.context_window,
        )

    def agent(self, model: Model, max_turns: int | None = None) -> Agent:
        """An agent as the rollout runs it (also used to build expert trajectories)."""
        return Agent(model, self.tools(), self.agent_config(max_turns), name=AGENT_NAME)

    def seeded(self, seed: int) -> SeededModel:
        cfg = self.config
        return SeededModel(
            self.model,
            seed,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
        )

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
        started = time.monotonic()
        task = req.task
        agent = LoopAgent(
            self.seeded(req.seed),
            self.agent_config(req.max_turns),
            tools=self.tools(),
            name=AGENT_NAME,
            resume=req.resume,
        )
        metadata = {
            **req.metadata,
            "group": req.group,
            "round": req.round,
            "attempt": req.attempt,
            "seed": req.seed,
        }
        result = self.runner.run(
            task,
            agent,
            sandbox=req.sandbox,
            prepare=req.prepare,
            timeout=self.config.episode_timeout_s,
            metadata=metadata,
            verifier_log_chars=VERIFIER_LOG_CHARS,
        )
        traj = result.trajectory
        ep = Episode(
            task=task.name,
            group=req.group,
            attempt=req.attempt,
            round=req.round,
            seed=req.seed,
            split=task.config.metadata.split,
            trajectory=traj,
            verifier=result.verifier,
            error=result.error,
            error_stage=result.error_stage,
            traceback=result.traceback,
            sandbox_s=result.build_s + result.sandbox_s + result.prepare_s,
            model_s=sum(c.model_s for c in traj.chunks) if traj is not None else 0.0,
            tools_s=sum(c.tools_s for c in traj.chunks) if traj is not None else 0.0,
            verify_s=result.verifier.duration_s if result.verifier is not None else 0.0,
        )
        try:
            self.reward(ep)
        except Exception as e:
            ep.error, ep.error_stage = f"{type(e).__name__}: {e}", "reward"
        ep.total_s = time.monotonic() - started
        return ep


def summarize_episodes(episodes: list[Episode]) -> dict[str, float]:
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
