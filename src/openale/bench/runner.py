"""Running agents x tasks x attempts in parallel, with resume and a progress bar.

On a terminal the run shows a live bar. Without one (CI logs, ``| tee``, a
batch job) a bar would print nothing until the end, so each finished trial is
one plain line instead, with a summary line every ``SUMMARY_EVERY_S`` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from openale.bench.agents import TaskAgent
from openale.bench.episode import EpisodeRunner
from openale.bench.trial import TrialResult, run_trial
from openale.sandbox.settings import SandboxSettings
from openale.tasks.model import Task

RESULTS_FILE = "results.jsonl"
SUMMARY_EVERY_S = 60.0  # without a terminal: how often a summary line is printed


def read_results(out_dir: Path) -> list[TrialResult]:
    path = Path(out_dir) / RESULTS_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append(TrialResult.model_validate(json.loads(line)))
    return rows


class BenchRun:
    """Runs every (task, attempt) pair once; an interrupted run picks up where it stopped."""

    def __init__(
        self,
        tasks: list[Task],
        agent_factory: Callable[[], TaskAgent],
        out_dir: Path,
        *,
        attempts: int = 1,
        concurrency: int = 4,
        settings: SandboxSettings | None = None,
        progress: bool = True,
    ):
        if attempts < 1 or concurrency < 1:
            raise ValueError("attempts and concurrency must be at least 1")
        self.tasks = tasks
        self.agent_factory = agent_factory
        self.out_dir = Path(out_dir)
        self.attempts = attempts
        self.concurrency = concurrency
        self.runner = EpisodeRunner(settings=settings)
        self.progress = progress
        self._write_lock = threading.Lock()

    def pending(self) -> list[tuple[Task, int]]:
        probe = self.agent_factory()
        done = {
            (r.task, r.attempt)
            for r in read_results(self.out_dir)
            if r.agent == probe.name and r.model == probe.model
        }
        return [(t, a) for t in self.tasks for a in range(self.attempts) if (t.name, a) not in done]

    def run(self) -> list[TrialResult]:
        """Run what is pending; returns every row of the run directory, old and new."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        todo = self.pending()
        console = Console()
        lines = self.progress and not console.is_terminal
        started = last_summary = time.monotonic()
        with (
            Progress(
                TextColumn("[bold]bench"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("passed {task.fields[passed]}  errors {task.fields[errors]}"),
                TimeElapsedColumn(),
                console=console,
                disable=not self.progress or lines,
            ) as bar,
            ThreadPoolExecutor(self.concurrency) as pool,
        ):
            job = bar.add_task("trials", total=len(todo), passed=0, errors=0)
            passed = errors = done = 0
            futures = [pool.submit(self._one, task, attempt) for task, attempt in todo]
            for future in as_completed(futures):
                row = future.result()
                passed += row.passed
                errors += row.error is not None
                done += 1
                bar.update(job, advance=1, passed=passed, errors=errors)
                if lines:
                    console.print(trial_line(row, done, len(todo)), highlight=False, markup=False)
                    now = time.monotonic()
                    if now - last_summary >= SUMMARY_EVERY_S and done < len(todo):
                        last_summary = now
                        console.print(
                            f"bench: {done}/{len(todo)} done, {passed} passed, {errors} errors,"
                            f" {now - started:.0f}s elapsed",
                            highlight=False,
                            markup=False,
                        )
                    console.file.flush()
        return read_results(self.out_dir)

    def _one(self, task: Task, attempt: int) -> TrialResult:
        row = run_trial(task, self.agent_factory(), attempt, self.out_dir, self.runner)
        with self._write_lock, (self.out_dir / RESULTS_FILE).open("a") as f:
            f.write(row.model_dump_json() + "\n")
        return row


def trial_line(row: TrialResult, done: int, total: int) -> str:
    """One finished trial as a plain line: ``[3/40] task#0 passed reward 1.0 (12.3s)``."""
    if row.error is not None:
        first = row.error.strip().splitlines()[0] if row.error.strip() else "unknown"
        verdict = f"ERROR in {row.error_stage or '?'}: {first[:200]}"
    else:
        verdict = f"{'passed' if row.passed else 'failed'} reward {row.reward}"
    return f"[{done}/{total}] {row.task}#{row.attempt} {verdict} ({row.total_s:.1f}s)"
