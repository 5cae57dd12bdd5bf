"""``ale sandbox exec|shell``: commands and shells in a sandbox, embedded or remote."""

from __future__ import annotations

import shlex
import sys
from typing import Annotated

import typer
from rich.markup import escape

from openale.cli.common import JsonFlag, err_console, user_errors
from openale.cli.sandbox.app import EnvFlag, parse_env, sandbox_app
from openale.sandbox import Sandbox
from openale.sandbox.terminal import write_stream


@sandbox_app.command("exec")
def exec_(
    sandbox_id: Annotated[str, typer.Argument(help="Sandbox id.")],
    cmd: Annotated[
        list[str], typer.Argument(help="One shell string, or a program and its arguments.")
    ],
    timeout: Annotated[
        float | None, typer.Option(help="Seconds before the command is killed (exit 124).")
    ] = None,
    cwd: Annotated[str | None, typer.Option(help="Working directory inside.")] = None,
    env: EnvFlag = None,
    user: Annotated[str | None, typer.Option(help="user[:group] to run as.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a command and exit with its exit code: `ale sandbox exec ID -- ls -la /`.

    One argument is run as a shell string (`'make && ./a.out'`); several are
    quoted and run as one program with its arguments.
    """
    command = cmd[0] if len(cmd) == 1 else shlex.join(cmd)
    with user_errors():
        sb = Sandbox.attach(sandbox_id)
        handle = sb.commands.run(
            command, timeout=timeout, env=parse_env(env), cwd=cwd, user=user, background=True
        )
        interrupted = False
        try:
            result = handle.wait()
        except KeyboardInterrupt:
            handle.kill()  # Ctrl-C here must not leave the command running in the sandbox
            interrupted = True
            result = handle.wait()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        write_stream(sys.stdout, result.stdout.encode())
        write_stream(sys.stderr, result.stderr.encode())
    if result.error:
        err_console.print(f"[yellow]note:[/yellow] {escape(result.error)}", soft_wrap=True)
    if interrupted:
        raise typer.Exit(130)
    if result.timed_out:
        err_console.print(f"[yellow]timed out[/yellow] after {timeout:g}s", highlight=False)
        raise typer.Exit(124)
    raise typer.Exit(result.exit_code if result.exit_code is not None else 255)


@sandbox_app.command()
def shell(sandbox_id: Annotated[str, typer.Argument(help="Sandbox id.")]) -> None:
    """Open an interactive shell (bash, else sh); with piped stdin, run it as a script."""
    with user_errors():
        sb = Sandbox.attach(sandbox_id)
        try:
            exit_code = sb.attach_shell()
        except KeyboardInterrupt:  # piped mode only: on a terminal Ctrl-C goes to the shell
            raise typer.Exit(130) from None
    raise typer.Exit(exit_code if exit_code is not None else 255)
