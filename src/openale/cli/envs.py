"""``ale envs``: the EnvHub, named and versioned environments built without a registry.

A sandbox starts from a built environment with
``ale sandbox create --image env:NAME@VERSION``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from openale.cli.common import JsonFlag, UsageError, console, err_console, user_errors
from openale.sandbox.envhub import Env, EnvHub, parse_ref

envs_app = typer.Typer(help="Register, build and list environments (EnvHub).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="NAME, or NAME@VERSION.")]
VersionArg = Annotated[str | None, typer.Argument(help="VERSION (unless NAME@VERSION).")]


def _ref(name: str, version: str | None) -> tuple[str, str]:
    if version is None:
        return parse_ref(name)
    if "@" in name:
        raise UsageError(f"give either {name!r} or a separate VERSION, not both")
    return name, version


@envs_app.command()
def register(
    name: Annotated[str, typer.Argument(help="Environment name (lowercase, digits, . _ -).")],
    version: Annotated[str, typer.Argument(help="Version, e.g. 1.0.")],
    path: Annotated[
        Path | None, typer.Argument(help="Folder with a Dockerfile (copied into the hub).")
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Register an image already on the engine.")
    ] = None,
    build: Annotated[bool, typer.Option("--build", help="Build right after registering.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register NAME@VERSION from a Dockerfile folder (PATH) or an existing image (--image)."""
    with user_errors():
        if (path is None) == (image is None):
            raise UsageError("give a Dockerfile folder (PATH) or --image IMAGE, not both")
        hub = EnvHub()
        env = hub.register(name, version, context=path, image=image)
    if build and env.status != "ready":
        env = _build(hub, name, version, force=False)
    _print(env, as_json)


@envs_app.command("build")
def build_(
    name: NameArg,
    version: VersionArg = None,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild without the layer cache, even if unchanged.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Build an environment's image, streaming the build log; a no-op when nothing changed."""
    with user_errors():
        name, version = _ref(name, version)
        hub = EnvHub()
    _print(_build(hub, name, version, force=force), as_json)


def _build(hub: EnvHub, name: str, version: str, *, force: bool) -> Env:
    # Log lines go to stderr, so `--json` output on stdout stays parseable.
    def show(line: str) -> None:
        err_console.print(f"[dim]{escape(line)}[/dim]", highlight=False, soft_wrap=True)

    with user_errors():
        return hub.build(name, version, force=force, on_log=show)


@envs_app.command("ls")
def list_(as_json: JsonFlag = False) -> None:
    """List your environments."""
    with user_errors():
        envs = EnvHub().list()
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in envs], indent=2))
        return
    table = Table("env", "status", "image", "digest", "built")
    table.columns[2].overflow = "fold"
    for env in envs:
        built = env.built_at.astimezone().strftime("%Y-%m-%d %H:%M") if env.built_at else "-"
        table.add_row(env.ref, _status(env.status), env.image, env.digest or "-", built)
    console.print(table)


@envs_app.command()
def show(
    name: NameArg,
    version: VersionArg = None,
    log: Annotated[bool, typer.Option("--log", help="Also print the last build's log.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Show one environment (and its last build log with --log)."""
    with user_errors():
        name, version = _ref(name, version)
        hub = EnvHub()
        env = hub.get(name, version)
        text = hub.build_log(name, version) if log else None
    _print(env, as_json)
    if text is not None:
        typer.echo(text)


@envs_app.command("rm")
def remove(
    name: NameArg,
    version: VersionArg = None,
    force: Annotated[
        bool, typer.Option("--force", help="Delete even while sandboxes use the image.")
    ] = False,
) -> None:
    """Delete an environment: its record, its copied folder and its image tag."""
    with user_errors():
        name, version = _ref(name, version)
        EnvHub().delete(name, version, force=force)
    console.print(f"deleted {name}@{version}")


def _print(env: Env, as_json: bool) -> None:
    if as_json:
        typer.echo(env.model_dump_json(indent=2))
        return
    rows = [
        ("env", env.ref),
        ("status", _status(env.status)),
        ("image", env.image),
        ("source", escape(env.source_image or "Dockerfile folder")),
        ("digest", env.digest or "-"),
        ("created", env.created_at.astimezone().isoformat(timespec="seconds")),
        ("built", env.built_at.astimezone().isoformat(timespec="seconds") if env.built_at else "-"),
    ]
    if env.error:
        rows.append(("error", f"[red]{escape(env.error)}[/red]"))
    for key, value in rows:
        console.print(f"[bold]{key:>8}[/bold]  {value}", highlight=False, soft_wrap=True)


def _status(status: str) -> str:
    color = {"ready": "green", "failed": "red", "building": "yellow"}.get(status, "white")
    return f"[{color}]{status}[/{color}]"
