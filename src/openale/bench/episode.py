"""The one episode runner: start a task's environment, let an agent act, verify.

Every caller that runs an agent on a task goes through ``EpisodeRunner.run``:
bench trials, task validation, RL rollouts and resampling (fork and replay),
and oracle trajectories. An episode has five stages, each timed:

- ``build``: the task's environment image is built or found in the cache
  (``EnvironmentBuilder``), and its working directory read once per image;
- ``sandbox``: a fresh sandbox from the image with the task's limits, or one
  from the caller's factory (e.g. a fork of a snapshot);
- ``prepare``: an optional step in the agent's environment before the agent
  (e.g. replaying an expert prefix, whose shell state the agent then inherits);
- ``agent``: any bench ``TaskAgent`` acts (the openale loop with any model and
  action format, a scripted policy, the oracle, ...); it never sees the tests;
- ``verify``: the tests are copied in and run (``tasks.verifier.verify``).

A harness failure at any stage is recorded on the result (``error``,
``error_stage``, ``traceback``), never raised and never a pass.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openale.agent.environment import SandboxEnvironment
from openale.agent.trajectory import Trajectory
from openale.bench.agents import AgentResult, TaskAgent
from openale.sandbox import AnySandbox, Sandbox, SandboxSettings, SandboxSpec
from openale.sandbox.runtime import DockerRuntime
from openale.tasks.environment import EnvironmentBuilder
from openale.tasks.model import Task
from openale.tasks.verifier import VerifierResult, verify

SandboxFactory = Callable[[], AnySandbox]
Prepare = Callable[[SandboxEnvironment], None]


def task_spec(task: Task, image: str, workdir: str, engine_cpus: int) -> SandboxSpec:
    """The sandbox a task's episode runs in: its image, limits, network and lifetime."""
    env = task.config.environment
    return SandboxSpec(
        image=image,
        cpus=min(env.cpus, engine_cpus),
        memory=f"{env.memory_mb}m",
        network="bridge" if env.allow_internet else "none",
        workdir=workdir,
        ttl_s=max(3600.0, task.config.agent.timeout_sec + task.config.verifier.timeout_sec),
        labels={"openale.task": task.name},
    )


class EpisodeResult(BaseModel):
    """What one episode did: the agent's result and trajectory, the verdict, and timings."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    task: str
    image: str | None = None
    built: bool = False  # the image was built for this episode (not found in the cache)
    agent: AgentResult | None = None
    verifier: VerifierResult | None = None
    error: str | None = None
    error_stage: str | None = None  # build | sandbox | prepare | agent | verify
    traceback: str | None = Field(None, repr=False)
    build_s: float = 0.0
    sandbox_s: float = 0.0
    prepare_s: float = 0.0
    agent_s: float = 0.0
    verify_s: float = 0.0
    total_s: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def trajectory(self) -> Trajectory | None:
        return self.agent.trajectory if self.agent is not None else None

    @property
    def passed(self) -> bool:
        return self.error is None and self.verifier is not None and self.verifier.passed


class EpisodeRunner:
    """Runs episodes of tasks; thread-safe, so one runner serves a whole pool of episodes."""

    def __init__(
        self, builder: EnvironmentBuilder | None = None, settings: SandboxSettings | None = None
    ):
        self.builder = builder or EnvironmentBuilder(settings)
        self.settings = self.builder.settings
        self._workdirs: dict[str, str] = {}
        self._engine_cpus: int | None = None
        self._lock = threading.Lock()

    def image(self, task: Task) -> tuple[str, float, bool]:
        """``(tag, build seconds, built now)`` of the task's image; its workdir is cached."""
        image, seconds, built = self.builder.build(task)
        self._workdir(image)
        return image, seconds, built

    def _workdir(self, image: str) -> str:
        with self._lock:
            if image not in self._workdirs:
                config = self.builder.client.api.inspect_image(image)["Config"]
                self._workdirs[image] = config.get("WorkingDir") or "/"
            return self._workdirs[image]

    def spec(self, task: Task, image: str) -> SandboxSpec:
        with self._lock:
            if self._engine_cpus is None:
                self._engine_cpus = DockerRuntime(self.settings).engine_cpus
            cpus = self._engine_cpus
        return task_spec(task, image, self._workdir(image), cpus)

    def sandbox(self, task: Task) -> AnySandbox:
        """A fresh sandbox of the task's environment (the image is built first if needed)."""
        image, _, _ = self.image(task)
        return Sandbox.create(self.spec(task, image), settings=self.settings)

    def run(
        self,
        task: Task,
        agent: TaskAgent,
        *,
        sandbox: SandboxFactory | None = None,
        prepare: Prepare | None = None,
        logs_dir: Path | None = None,
        timeout: float | None = None,
        metadata: dict[str, Any] | None = None,
        verifier_log_chars: int | None = None,
    ) -> EpisodeResult:
        """Run ``agent`` on ``task`` once; harness failures are recorded, never raised.

        ``sandbox`` replaces the fresh sandbox of the task's image (the build
        stage is then skipped). ``prepare`` runs in the environment the agent
        then acts in, so the agent must take it: ``run(..., env=...)`` (the
        openale loop's ``LoopAgent`` does). ``timeout``: the agent's budget
        (default the task's). ``logs_dir`` receives the verifier's log (and the
        agent's files, a harness error's traceback). ``metadata`` is added to
        the trajectory's. ``verifier_log_chars`` keeps only the log's tail.
        """
        result = EpisodeResult(task=task.name, started_at=datetime.now(UTC))
        started = time.monotonic()
        stage, box, env = "build", None, None
        try:
            t = time.monotonic()
            if sandbox is None:
                result.image, _, result.built = self.image(task)
                result.build_s = time.monotonic() - t
                stage, t = "sandbox", time.monotonic()
                box = Sandbox.create(self.spec(task, result.image), settings=self.settings)
            else:
                stage = "sandbox"
                box = sandbox()
                result.image = box.spec.image
            result.sandbox_s = time.monotonic() - t

            extra: dict[str, Any] = {}
            if prepare is not None:
                stage, t = "prepare", time.monotonic()
                env = SandboxEnvironment(box)
                prepare(env)
                extra["env"] = env
                result.prepare_s = time.monotonic() - t

            stage, t = "agent", time.monotonic()
            budget = task.config.agent.timeout_sec if timeout is None else timeout
            agent_logs = Path(logs_dir) / "agent" if logs_dir is not None else None
            result.agent = agent.run(task, box, timeout=budget, logs_dir=agent_logs, **extra)
            result.agent_s = time.monotonic() - t
            traj = result.agent.trajectory
            if traj is not None and metadata:
                traj.metadata.update(metadata)

            stage, t = "verify", time.monotonic()
            log_path = Path(logs_dir) / "verifier.log" if logs_dir is not None else None
            verdict = verify(task, box, log_path=log_path)
            result.verify_s = time.monotonic() - t
            if verifier_log_chars is not None:
                verdict.log = verdict.log[-verifier_log_chars:]
            result.verifier = verdict
            if traj is not None:
                traj.reward = verdict.reward if verdict.error is None else None
                traj.verifier = {**verdict.model_dump(exclude={"log"}), "passed": verdict.passed}
            if verdict.error:
                result.error, result.error_stage = verdict.error, "verify"
        except Exception as e:  # a broken harness or agent fails this episode, not the caller
            result.error, result.error_stage = f"{type(e).__name__}: {e}", stage
            result.traceback = traceback.format_exc()
            if logs_dir is not None:
                Path(logs_dir).mkdir(parents=True, exist_ok=True)
                (Path(logs_dir) / "harness-error.txt").write_text(result.traceback)
        finally:
            try:
                if env is not None:
                    env.close()
                if box is not None:
                    box.close()
            except Exception as e:  # the episode is done; a stuck container is the reaper's
                result.error = result.error or f"closing the sandbox failed: {e}"
                result.error_stage = result.error_stage or "sandbox"
        result.total_s = time.monotonic() - started
        result.finished_at = datetime.now(UTC)
        return result
