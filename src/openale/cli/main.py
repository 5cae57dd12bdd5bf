"""``ale``: the one command of openale."""

from __future__ import annotations

import typer

from openale.cli.bench import bench_app
from openale.cli.envs import envs_app
from openale.cli.images import images_app
from openale.cli.run import run_command
from openale.cli.safety import safety_app
from openale.cli.sandbox import sandbox_app
from openale.cli.serve import serve_app
from openale.cli.serve_model import serve_model_command
from openale.cli.tasks import tasks_app
from openale.cli.train import train_command

app = typer.Typer(
    name="ale",
    help="openale: sandboxes, tasks, agents and RL for LLM agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(images_app, name="images")
app.add_typer(envs_app, name="envs")
app.add_typer(tasks_app, name="tasks")
app.add_typer(bench_app, name="bench")
app.add_typer(serve_app, name="serve")
app.add_typer(safety_app, name="safety")
app.command("run")(run_command)
app.command("serve-model")(serve_model_command)
app.command("train")(train_command)


if __name__ == "__main__":  # pragma: no cover
    app()
