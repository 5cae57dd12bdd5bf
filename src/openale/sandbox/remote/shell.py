"""A shell in a remote sandbox on this process's stdin/stdout/stderr (``ale sandbox shell``).

The API carries commands and shell sessions, not a raw terminal stream, so:

- piped stdin runs as a script, as it does embedded: it is written to a file in
  the sandbox and run by bash (else sh) as one command, whose stdout, stderr
  and exit code are the shell's;
- on a terminal, each line typed is one command of a persistent session (``cd``
  and variables carry over); full-screen programs need the embedded shell.
"""

from __future__ import annotations

import secrets
import shlex
import sys
from typing import TYPE_CHECKING

from openale.sandbox.errors import SessionClosedError
from openale.sandbox.terminal import isatty, write_stream

if TYPE_CHECKING:
    from openale.sandbox.remote.sandbox import RemoteSandbox

_RUN_SCRIPT = (
    'if command -v bash >/dev/null 2>&1; then bash "$f"; else sh "$f"; fi; '
    'rc=$?; rm -f "$f"; exit $rc'
)


def attach_shell(sb: RemoteSandbox) -> int | None:
    """Run the shell until it exits; its exit code (None if unknown)."""
    sb.ensure_running()
    if isatty(sys.stdin) and isatty(sys.stdout):
        return _line_shell(sb)
    return _script(sb)


def _script(sb: RemoteSandbox) -> int | None:
    path = f"/tmp/.ale-shell-{secrets.token_hex(6)}"
    sb.files.write(path, sys.stdin.buffer.read(), mode=0o600)
    handle = sb.commands.run(f"f={shlex.quote(path)}; {_RUN_SCRIPT}", timeout=None, background=True)
    try:
        result = handle.wait()
    except KeyboardInterrupt:
        handle.kill()  # Ctrl-C must not leave the script running in the sandbox
        raise
    write_stream(sys.stdout, result.stdout.encode())
    write_stream(sys.stderr, result.stderr.encode())
    return result.exit_code


def _line_shell(sb: RemoteSandbox) -> int | None:
    exit_code: int | None = 0
    with sb.sessions.create() as session:
        while True:
            try:
                line = input(f"{sb.id}$ ")
            except EOFError:
                return exit_code
            except KeyboardInterrupt:
                sys.stdout.write("\n")
                continue
            words = line.split()
            if words[:1] == ["exit"]:
                return int(words[1]) if len(words) > 1 and words[1].isdigit() else exit_code
            if not words:
                continue
            try:
                result = session.run(line, timeout=None)
            except KeyboardInterrupt:
                session.interrupt()
                continue
            except SessionClosedError:
                return exit_code
            write_stream(sys.stdout, result.output.encode())
            exit_code = result.exit_code
