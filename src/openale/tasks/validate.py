"""Instance validation: a task is valid only when its image builds, the untouched
environment fails its tests, the reference solution passes them, and passes again."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, Field

from openale.sandbox.settings import SandboxSettings
from openale.tasks.environment import EnvironmentBuilder
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


def validate_task(task: Task, builder: EnvironmentBuilder, out_dir: Path) -> TaskValidation:
    from openale.bench.agents import NopAgent, OracleAgent
    from openale.bench.trial import run_trial

    report = TaskValidation(task=task.name)
    if task.solution is None:
        report.problems.append("no reference solution (solution/solve.sh)")
    first = run_trial(task, OracleAgent(), 0, out_dir / "oracle", builder)
    report.build_s = first.build_s
    if first.error_stage == "build":
        report.problems.append(f"the environment does not build: {first.error}")
        return report
    nop = run_trial(task, NopAgent(), 0, out_dir / "nop", builder)
    second = run_trial(task, OracleAgent(), 1, out_dir / "oracle", builder)
    report.oracle = [first.reward, second.reward]
    report.nop = nop.reward
    for label, row in (("oracle", first), ("second oracle", second)):
        if row.error:
            report.problems.append(f"{label} run errored at {row.error_stage}: {row.error}")
        elif not row.passed:
            report.problems.append(f"{label} run failed the tests (reward {row.reward})")
    if nop.error:
        report.problems.append(f"the untouched environment errors the verifier: {nop.error}")
    elif nop.passed:
        report.problems.append("tests pass without any solution (nop agent scored 1)")
    if first.passed != second.passed and not (first.error and second.error):
        report.problems.append(
            f"flaky: the oracle scored {first.reward} then {second.reward} on identical runs"
        )
    return report


def validate_tasks(
    tasks: list[Task],
    *,
    concurrency: int = 2,
    settings: SandboxSettings | None = None,
    out_dir: Path | None = None,
    on_done=None,
) -> list[TaskValidation]:
    builder = EnvironmentBuilder(settings)
    out = Path(out_dir or tempfile.mkdtemp(prefix="ale-validate-"))

    def one(task: Task) -> TaskValidation:
        result = validate_task(task, builder, out / task.name)
        if on_done:
            on_done(result)
        return result

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, tasks))
