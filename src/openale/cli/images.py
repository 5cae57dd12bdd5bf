"""``ale images``: base images built without a registry."""

import typer

images_app = typer.Typer(help="Build and list base images without a registry.", no_args_is_help=True)
