"""``ale tasks``: list and validate verifiable tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from openale.bench.validate import validate_tasks
from openale.cli.common import console, user_errors
from openale.tasks import load_tasks

tasks_app = typer.Typer(help="List and validate verifiable tasks.", no_args_is_help=True)

Source = Annotated[str, typer.Argument(help="A task folder, a folder of tasks, or a suite name.")]
Filter = Annotated[
    list[str] | None, typer.Option("--filter", "-f", help="Task name glob; repeatable.")
]


@tasks_app.command("ls")
def ls(
    source: Source,
    filters: Filter = None,
    split: Annotated[str | None, typer.Option(help="Only tasks of this split.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List tasks with their category, difficulty and timeouts."""
    with user_errors():
        tasks = load_tasks(source, include=filters, split=split)
    if as_json:
        for t in tasks:
            meta = t.config.metadata
            print(
                json.dumps(
                    {
                        "name": t.name,
                        "path": str(t.path),
                        "layout": t.layout,
                        "category": meta.category,
                        "difficulty": meta.difficulty,
                        "split": meta.split,
                        "tags": meta.tags,
                    }
                )
            )
        return
    table = Table("category", "difficulty", "split", "agent s", "verify s", "layout")
    table.add_column("task", no_wrap=True)  # a cut name cannot be passed to --filter
    for t in tasks:
        c = t.config
        row = (
            t.category,
            t.difficulty,
            c.metadata.split or "",
            f"{c.agent.timeout_sec:g}",
            f"{c.verifier.timeout_sec:g}",
            t.layout,
            t.name,
        )
        table.add_row(*row)
    console.print(table)
    console.print(f"{len(tasks)} task(s)")


@tasks_app.command()
def validate(
    source: Source,
    filters: Filter = None,
    concurrency: Annotated[int, typer.Option("-n", help="Tasks validated at once.")] = 2,
    out: Annotated[Path | None, typer.Option(help="Keep trial logs here.")] = None,
    runs: Annotated[int, typer.Option(help="Oracle runs per task (flakiness check).")] = 2,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check each task: the image builds, the oracle passes (twice) and doing nothing fails."""
    with user_errors():
        tasks = load_tasks(source, include=filters)
        with Progress(console=console, disable=as_json) as bar:
            job = bar.add_task("validating", total=len(tasks))
            results = validate_tasks(
                tasks,
                concurrency=concurrency,
                out_dir=out,
                oracle_runs=runs,
                on_done=lambda _: bar.advance(job),
            )
    bad = [r for r in results if not r.ok]
    if as_json:
        for r in results:
            print(json.dumps({"task": r.task, "ok": r.ok, **r.model_dump(exclude={"task"})}))
    else:
        for r in results:
            mark = "[green]ok[/]" if r.ok else "[red]BROKEN[/]"
            console.print(f"{mark} {escape(r.task)}")
            for p in r.problems:
                console.print(f"    - {escape(p)}", highlight=False)
        console.print(f"{len(results) - len(bad)}/{len(results)} tasks valid")
    if bad:
        raise typer.Exit(1)
