"""One trial: build the environment, let the agent act, verify, and record the timings."""

from __future__ import annotations

import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from openale.bench.agents import Agent
from openale.sandbox import Sandbox, SandboxError, SandboxSpec
from openale.sandbox.runtime import DockerRuntime
from openale.tasks.environment import EnvironmentBuilder
from openale.tasks.model import Task
from openale.tasks.verifier import verify


class TrialResult(BaseModel):
    """One JSONL row of a bench run."""

    task: str
    attempt: int
    agent: str
    model: str | None = None
    reward: float | None = None
    passed: bool = False
    error: str | None = None
    error_stage: str | None = None  # build | setup | agent | verify | harness
    agent_outcome: str | None = None
    agent_error: str | None = None
    category: str = ""
    difficulty: str = ""
    split: str | None = None
    image: str | None = None
    build_s: float = 0.0
    built: bool = False
    setup_s: float = 0.0
    agent_s: float = 0.0
    verify_s: float = 0.0
    total_s: float = 0.0
    trajectory: str | None = None
    verifier_log: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def task_spec(task: Task, image: str, workdir: str, engine_cpus: int) -> SandboxSpec:
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


def trial_dir(out_dir: Path, task: Task, attempt: int) -> Path:
    return out_dir / "trials" / f"{task.name}__{attempt}"


def run_trial(
    task: Task, agent: Agent, attempt: int, out_dir: Path, builder: EnvironmentBuilder
) -> TrialResult:
    """Run one agent on one task once. Harness failures become ``error``, never a pass."""
    row = TrialResult(
        task=task.name,
        attempt=attempt,
        agent=agent.name,
        model=agent.model,
        category=task.category,
        difficulty=task.difficulty,
        split=task.config.metadata.split,
        started_at=datetime.now(UTC),
    )
    logs = trial_dir(out_dir, task, attempt)
    started = time.monotonic()
    stage = "build"
    sandbox = None
    try:
        row.image, row.build_s, row.built = builder.build(task)
        stage = "setup"
        t = time.monotonic()
        config = builder.client.api.inspect_image(row.image)["Config"]
        cpus = DockerRuntime(builder.settings).engine_cpus
        spec = task_spec(task, row.image, config.get("WorkingDir") or "/", cpus)
        sandbox = Sandbox.create(spec, settings=builder.settings)
        row.setup_s = time.monotonic() - t

        stage = "agent"
        t = time.monotonic()
        outcome = agent.run(
            task, sandbox, timeout=task.config.agent.timeout_sec, logs_dir=logs / "agent"
        )
        row.agent_s = time.monotonic() - t
        row.agent_outcome, row.trajectory = outcome.outcome, outcome.trajectory_path
        row.agent_error = outcome.error

        stage = "verify"
        t = time.monotonic()
        verdict = verify(task, sandbox, log_path=logs / "verifier.log")
        row.verify_s = time.monotonic() - t
        row.verifier_log = str(logs / "verifier.log")
        row.reward, row.passed = verdict.reward, verdict.passed
        if verdict.error:
            row.error, row.error_stage = verdict.error, "verify"
    except SandboxError as e:
        row.error, row.error_stage = str(e), stage
    except Exception as e:  # a bug in an agent or the harness must not end the whole run
        row.error, row.error_stage = f"{type(e).__name__}: {e}", stage
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "harness-error.txt").write_text(traceback.format_exc())
    finally:
        if sandbox is not None:
            sandbox.close()
    row.total_s = time.monotonic() - started
    row.finished_at = datetime.now(UTC)
    return row
