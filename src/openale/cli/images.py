"""``ale images``: base images built without a registry."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.table import Table

from openale.cli.common import console, user_errors
from openale.sandbox import images
from openale.sandbox.settings import SandboxSettings

images_app = typer.Typer(
    help="Build and list base images without a registry.", no_args_is_help=True
)


@images_app.command()
def bootstrap(
    force: Annotated[bool, typer.Option("--force", help="Rebuild images that exist.")] = False,
    mirror: Annotated[
        str | None, typer.Option("--mirror", help="Debian mirror for debootstrap and apt.")
    ] = None,
) -> None:
    """Build openale/debian:bookworm and openale/toolbox:bookworm, then tag the aliases."""
    settings = SandboxSettings(**({"debian_mirror": mirror} if mirror else {}))
    start = time.monotonic()
    with user_errors(), console.status("bootstrapping images") as status:

        def progress(message: str) -> None:
            console.print(f"[dim]{time.monotonic() - start:6.1f}s[/dim] {message}", highlight=False)
            status.update(message)

        tags = images.bootstrap(settings, force=force, progress=progress)
    console.print(f"[green]ready[/green] in {time.monotonic() - start:.1f}s: {len(tags)} tag(s)")


@images_app.command("ls")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show openale's images: base, toolbox, aliases, environments and snapshots."""
    with user_errors():
        infos = images.list_images(SandboxSettings())
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
        return
    # Aliases show the id of the image they point at, as `docker images` does.
    table = Table("tag", "kind", "id", "size", "created")
    table.columns[0].overflow = "fold"
    for info in infos:
        table.add_row(
            info.tag,
            info.kind,
            info.id.removeprefix("sha256:")[:12],
            _human_size(info.size_bytes),
            info.created.astimezone().strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@images_app.command()
def alias() -> None:
    """Tag the alias table's names onto local images and print the mapping."""
    settings = SandboxSettings()
    with user_errors():
        applied = images.apply_aliases(
            settings, progress=lambda m: console.print(m, highlight=False)
        )
    table = Table("name", "image")
    table.columns[0].overflow = "fold"
    for name, target in applied.items():
        table.add_row(name, target)
    console.print(table)
    if len(applied) < len(settings.image_aliases):
        console.print(
            f"{len(settings.image_aliases) - len(applied)} alias(es) not tagged, see above"
        )


def _human_size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"
