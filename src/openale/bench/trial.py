"""One bench trial: an episode of one agent on one task, recorded as a results row."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from openale.bench.agents import TaskAgent
from openale.bench.episode import EpisodeRunner
from openale.tasks.model import Task


class TrialResult(BaseModel):
    """One JSONL row of a bench run."""

    task: str
    attempt: int
    agent: str
    model: str | None = None
    reward: float | None = None
    passed: bool = False
    error: str | None = None
    error_stage: str | None = None  # build | sandbox | prepare | agent | verify
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


def trial_dir(out_dir: Path, task: Task, attempt: int) -> Path:
    return out_dir / "trials" / f"{task.name}__{attempt}"


def run_trial(
    task: Task, agent: TaskAgent, attempt: int, out_dir: Path, runner: EpisodeRunner
) -> TrialResult:
    """Run one agent on one task once. Harness failures become ``error``, never a pass."""
    logs = trial_dir(out_dir, task, attempt)
    ep = runner.run(task, agent, logs_dir=logs)
    row = TrialResult(
        task=task.name,
        attempt=attempt,
        agent=agent.name,
        model=agent.model,
        category=task.category,
        difficulty=task.difficulty,
        split=task.config.metadata.split,
        image=ep.image,
        built=ep.built,
        build_s=ep.build_s,
        setup_s=ep.sandbox_s + ep.prepare_s,
        agent_s=ep.agent_s,
        verify_s=ep.verify_s,
        total_s=ep.total_s,
        error=ep.error,
        error_stage=ep.error_stage,
        started_at=ep.started_at,
        finished_at=ep.finished_at,
    )
    if ep.agent is not None:
        row.agent_outcome, row.agent_error = ep.agent.outcome, ep.agent.error
        row.trajectory = ep.agent.trajectory_path
    if ep.verifier is not None:
        row.reward, row.passed = ep.verifier.reward, ep.verifier.passed
        row.verifier_log = str(logs / "verifier.log")
    return row
