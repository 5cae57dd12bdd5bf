"""``ale sandbox``: create, use and clean up sandboxes."""

import typer

sandbox_app = typer.Typer(help="Create, use and clean up sandboxes.", no_args_is_help=True)
