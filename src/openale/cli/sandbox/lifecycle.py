"""``ale sandbox create|ls|rm|gc|snapshot|fork``: the lifecycle of sandboxes.

Every sandbox made here is detached: it outlives the ``ale`` process until
``ale sandbox rm``, its idle TTL, its deadline, or ``ale sandbox gc``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from openale.cli.common import JsonFlag, UsageError, console, print_error, user_errors
from openale.cli.sandbox.app import EnvFlag, parse_env, sandbox_app
from openale.sandbox import Sandbox, SandboxError, SandboxInfo, SandboxSettings, SandboxSpec, gc


@sandbox_app.command()
def create(
    image: Annotated[str | None, typer.Option(help="Image (or alias); default: toolbox.")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU quota in cores.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory limit, e.g. 512m, 2g.")] = None,
    pids: Annotated[int | None, typer.Option(help="Maximum number of processes.")] = None,
    network: Annotated[str | None, typer.Option(help="none (default) or bridge.")] = None,
    user: Annotated[str | None, typer.Option(help="user[:group] to run as inside.")] = None,
    workdir: Annotated[str | None, typer.Option(help="Working directory inside.")] = None,
    env: EnvFlag = None,
    ttl: Annotated[
        float | None, typer.Option(help="Idle seconds before reaping (0 = never; default 3600).")
    ] = None,
    deadline: Annotated[
        float | None, typer.Option(help="Hard lifetime in seconds (0 = none, the default).")
    ] = None,
    read_only_root: Annotated[
        bool, typer.Option("--read-only-root", help="Read-only root; workdir and /tmp writable.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a sandbox that outlives this command, and print its id."""
    with user_errors():
        fields = {
            "image": image,
            "cpus": cpus,
            "memory": memory,
            "pids": pids,
            "network": network,
            "user": user,
            "workdir": workdir,
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        if env:
            fields["env"] = parse_env(env)
        if ttl is not None:
            fields["ttl_s"] = ttl or None
        if deadline is not None:
            fields["deadline_s"] = deadline or None
        if read_only_root:
            fields["read_only_root"] = True
        spec = SandboxSpec.parse(**fields)
        sb = Sandbox.create(spec, detach=True)
        if as_json:
            typer.echo(sb.info().model_dump_json(indent=2))
        else:
            typer.echo(sb.id)


@sandbox_app.command("ls")
def list_(
    as_json: JsonFlag = False,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Include stopped and failed sandboxes.")
    ] = False,
) -> None:
    """List sandboxes (running and pending ones unless --all)."""
    with user_errors():
        infos = [i for i in Sandbox.list() if show_all or i.status in ("running", "pending")]
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
        return
    table = Table(
        "id",
        "status",
        "image",
        "created",
        "last active",
        "ttl",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in table.columns:
        column.no_wrap = column.header != "image"
    table.columns[2].overflow = "fold"
    for info in infos:
        table.add_row(
            info.id,
            _status_markup(info.status),
            escape(info.image),
            _ago(info.created_at),
            _ago(info.last_active_at),
            _ttl(info),
        )
    console.print(table)


@sandbox_app.command()
def rm(
    ids: Annotated[list[str] | None, typer.Argument(help="Sandbox ids.")] = None,
    remove_all: Annotated[
        bool, typer.Option("--all", help="Remove every openale sandbox on the engine.")
    ] = False,
) -> None:
    """Stop and delete sandboxes. Every id is tried; any failure exits 1."""
    with user_errors():
        targets = list(dict.fromkeys(ids or []))
        if remove_all:
            targets += [i.id for i in Sandbox.list() if i.id not in targets]
        if not targets:
            raise UsageError("give sandbox ids, or --all")
    failed = False
    for sandbox_id in targets:
        try:
            Sandbox.attach(sandbox_id).close()
            typer.echo(sandbox_id)
        except SandboxError as e:
            print_error(str(e))
            failed = True
    if failed:
        raise typer.Exit(1)


@sandbox_app.command("gc")
def gc_(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be removed.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove sandboxes past their TTL or deadline, stopped ones, and orphans."""
    with user_errors():
        items = gc(SandboxSettings(), dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps([i.model_dump() for i in items], indent=2))
        return
    if not items:
        console.print("nothing to remove")
        return
    table = Table("id", "action", "reason", box=box.SIMPLE_HEAD)
    table.columns[0].no_wrap = True
    for item in items:
        action = "would remove" if dry_run else "removed" if item.removed else "already gone"
        table.add_row(item.id, action, escape(item.reason))
    console.print(table)


@sandbox_app.command()
def snapshot(
    sandbox_id: Annotated[str, typer.Argument(help="Sandbox id.")], as_json: JsonFlag = False
):
    """Commit a sandbox's filesystem to an image; prints the snapshot id."""
    with user_errors():
        snap = Sandbox.attach(sandbox_id).snapshot()
    typer.echo(snap.model_dump_json(indent=2) if as_json else snap.id)


@sandbox_app.command()
def fork(
    snapshot_id: Annotated[str, typer.Argument(help="Snapshot id (snap-...).")],
    n: Annotated[int, typer.Option("-n", min=1, help="How many sandboxes to start.")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Start N detached sandboxes from a snapshot; prints their ids."""
    with user_errors():
        forks = Sandbox.fork(snapshot_id, n, detach=True)
        if as_json:
            typer.echo(json.dumps([sb.info().model_dump(mode="json") for sb in forks], indent=2))
        else:
            typer.echo("\n".join(sb.id for sb in forks))


# -- formatting -----------------------------------------------------------------------


def _ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    return _duration((datetime.now(UTC) - when).total_seconds()) + " ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _ttl(info: SandboxInfo) -> str:
    if info.ttl_s is None:
        return "never"
    last = info.last_active_at or info.created_at
    left = info.ttl_s - (datetime.now(UTC) - last).total_seconds()
    return f"{_duration(left)} left"


def _status_markup(status: str) -> str:
    color = {"running": "green", "pending": "yellow", "failed": "red"}.get(status, "dim")
    return f"[{color}]{status}[/{color}]"
