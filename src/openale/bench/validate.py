"""Instance validation: a task is valid only when its image builds, the untouched
environment fails its tests, the reference solution passes them, and passes again."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, Field

from openale.bench.agents import NopAgent, OracleAgent
from openale.bench.episode import EpisodeRunner
from openale.bench.trial import run_trial
from openale.sandbox.settings import SandboxSettings
from openale.tasks.model import Task


class TaskValidation(BaseModel):
    task: str
    problems: list[str] = Field(default_factory=list)
    oracle: list[float | None] = Field(default_factory=list)
    nop: float | None = None
    build_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_task(
    task: Task, runner: EpisodeRunner, out_dir: Path, *, oracle_runs: int = 2
) -> TaskValidation:
    """Build, run the oracle ``oracle_runs`` times and a do-nothing agent once, and judge."""
    report = TaskValidation(task=task.name)
    if task.solution is None:
        report.problems.append("no reference solution (solution/solve.sh)")
    first = run_trial(task, OracleAgent(), 0, out_dir / "oracle", runner)
    report.build_s = first.build_s
    if first.error_stage == "build":
        report.problems.append(f"the environment does not build: {first.error}")
        return report
    nop = run_trial(task, NopAgent(), 0, out_dir / "nop", runner)
    oracle = [first] + [
        run_trial(task, OracleAgent(), i, out_dir / "oracle", runner) for i in range(1, oracle_runs)
    ]
    report.oracle = [r.reward for r in oracle]
    report.nop = nop.reward
    failures = [r for r in oracle if r.error or not r.passed]
    if len(failures) == len(oracle):
        row = failures[0]
        report.problems.append(
            f"the oracle errored at {row.error_stage}: {row.error}"
            if row.error
            else f"the oracle fails the tests (reward {row.reward})"
            + (f"; its solution reported: {row.agent_error}" if row.agent_error else "")
        )
    elif failures:
        report.problems.append(
            f"flaky: the oracle passed {len(oracle) - len(failures)} of {len(oracle)} "
            f"identical runs (rewards {report.oracle})"
        )
    if nop.error:
        report.problems.append(f"the untouched environment errors the verifier: {nop.error}")
    elif nop.passed:
        report.problems.append("tests pass without any solution (nop agent scored 1)")
    return report


def validate_tasks(
    tasks: list[Task],
    *,
    concurrency: int = 2,
    settings: SandboxSettings | None = None,
    out_dir: Path | None = None,
    oracle_runs: int = 2,
    on_done=None,
) -> list[TaskValidation]:
    runner = EpisodeRunner(settings=settings)
    out = Path(out_dir or tempfile.mkdtemp(prefix="ale-validate-"))

    def one(task: Task) -> TaskValidation:
        result = validate_task(task, runner, out / task.name, oracle_runs=oracle_runs)
        if on_done:
            on_done(result)
        return result

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, tasks))
