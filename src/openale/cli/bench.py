"""``ale bench``: run agents on tasks in parallel, then report."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openale.bench import BenchRun, load_agent, write_report
from openale.bench.report import Score, Summary
from openale.cli.common import UsageError, console, print_error, user_errors
from openale.tasks import load_tasks

bench_app = typer.Typer(help="Run agents on tasks and report the scores.", no_args_is_help=True)


@bench_app.command()
def run(
    tasks: Annotated[str, typer.Option("--tasks", "-t", help="Task folder(s) or suite name.")],
    agent: Annotated[str, typer.Option("--agent", "-a", help="oracle, nop or module:Class.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (resumable).")],
    model: Annotated[str | None, typer.Option(help="Model name passed to the agent.")] = None,
    concurrency: Annotated[int, typer.Option("-n", help="Trials at once.")] = 4,
    attempts: Annotated[int, typer.Option("-k", help="Attempts per task.")] = 1,
    limit: Annotated[int | None, typer.Option(help="Only the first N tasks.")] = None,
    filters: Annotated[list[str] | None, typer.Option("--filter", "-f", help="Name glob.")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Name glob.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    difficulty: Annotated[str | None, typer.Option(help="Only this difficulty.")] = None,
    split: Annotated[str | None, typer.Option(help="Only this split (train, heldout).")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html at the end.")] = True,
) -> None:
    """Run AGENT on every task K times, N at a time; rerunning skips finished trials."""
    with user_errors():
        selected = load_tasks(
            tasks,
            include=filters,
            exclude=exclude,
            category=category,
            difficulty=difficulty,
            split=split,
            limit=limit,
        )
        if not selected:
            raise UsageError(f"no task in {tasks!r} matches the filters given")
        kwargs = {"model": model} if model else {}
        factory = functools.partial(load_agent, agent, **kwargs)
        factory()  # fail now, not in every trial, if the agent cannot be built
        bench = BenchRun(selected, factory, out, attempts=attempts, concurrency=concurrency)
        skipped = len(selected) * attempts - len(bench.pending())
        if skipped:
            console.print(f"resuming: {skipped} finished trial(s) skipped")
        rows = bench.run()
        if report and rows:
            summary, path = write_report(out)
            print_summary(summary)
            console.print(f"report: {path}")
    # A harness error is no verdict on the agent: the run did not measure what it was asked to.
    errored = [r for r in rows if r.error is not None]
    if errored:
        print_error(
            f"{len(errored)} of {len(rows)} trial(s) ended in a harness error"
            f" (first: {errored[0].task}, {errored[0].error_stage}); see {out / 'results.jsonl'}"
        )
        raise typer.Exit(1)


@bench_app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Argument(help="A run directory of `ale bench run`.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Summarise a run (pass@1, pass@k, mean reward, errors) and write report.html."""
    with user_errors():
        summary, path = write_report(out)
    if as_json:
        print(json.dumps(summary.model_dump()))
        return
    print_summary(summary)
    console.print(f"report: {path}")


def _score_table(title: str, scores: dict[str, Score]) -> Table:
    table = Table(title, "tasks", "trials", "pass@1", "pass@k", "mean reward", "errors")
    for name, s in scores.items():
        table.add_row(
            name,
            str(s.tasks),
            str(s.trials),
            f"{s.pass_at_1:.3f}",
            f"{s.pass_at_k:.3f}",
            f"{s.mean_reward:.3f}",
            str(s.errors),
        )
    return table


def print_summary(summary: Summary) -> None:
    o = summary.overall
    at_k = f", pass@{o.k} {o.pass_at_k:.3f}" if o.k > 1 else ""
    console.print(
        f"[bold]{summary.agent}[/]{' / ' + summary.model if summary.model else ''}: "
        f"{o.tasks} tasks, {o.trials} trials, pass@1 [bold]{o.pass_at_1:.3f}[/]{at_k}, "
        f"mean reward {o.mean_reward:.3f}, errors {o.errors}"
    )
    console.print(_score_table("category", summary.by_category))
    console.print(_score_table("difficulty", summary.by_difficulty))
    for e in summary.errors[:20]:
        console.print(
            f"[red]error[/] {e['task']}#{e['attempt']} ({e['stage']}): {e['error']}",
            highlight=False,
            soft_wrap=True,
        )
