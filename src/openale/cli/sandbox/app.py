"""The ``ale sandbox`` Typer app and the options its commands share."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from openale.sandbox import InvalidSpecError

sandbox_app = typer.Typer(help="Create, use and clean up sandboxes.", no_args_is_help=True)


EnvFlag = Annotated[
    list[str] | None,
    typer.Option("--env", "-e", help="K=V (or K to copy the local value); repeatable."),
]


def parse_env(items: list[str] | None) -> dict[str, str]:
    env = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            if name not in os.environ:
                raise InvalidSpecError(f"--env {item!r}: expected K=V (or K set locally)")
            value = os.environ[name]
        env[name] = value
    return env
