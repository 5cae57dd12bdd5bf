"""What every ``ale`` subcommand shares: turning typed errors into one-line messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from openale.sandbox.errors import InvalidSpecError, SandboxError

console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


class UsageError(Exception):
    """A command line that cannot be acted on (exit 2)."""


def print_error(message: str) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Errors a user can act on: one red line on stderr, exit 2 for bad input, 1 otherwise."""
    try:
        yield
    except (InvalidSpecError, UsageError, ValueError) as e:
        print_error(str(e))
        raise typer.Exit(2) from None
    except (SandboxError, FileNotFoundError) as e:
        print_error(str(e))
        raise typer.Exit(1) from None
