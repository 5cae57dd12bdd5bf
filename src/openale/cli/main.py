"""``ale``: the one command of openale."""

from __future__ import annotations

import typer

from openale.cli.images import images_app
from openale.cli.sandbox import sandbox_app

app = typer.Typer(
    name="ale",
    help="openale: sandboxes, tasks, agents and RL for LLM agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(images_app, name="images")


if __name__ == "__main__":  # pragma: no cover
    app()
