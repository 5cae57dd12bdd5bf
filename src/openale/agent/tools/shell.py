"""The ``shell`` tool: one command in the run's persistent bash session."""

from __future__ import annotations

from typing import Any

from openale.agent.tools.base import ToolContext, ToolOutput
from openale.sandbox import SessionClosedError

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 3600.0
MAX_OUTPUT_CHARS = 30_000


def clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, keeping its head and its tail."""
    if len(text) <= limit:
        return text
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n[... {omitted} characters omitted ...]\n{text[-half:]}"


class ShellTool:
    name = "shell"
    description = (
        "Run a bash command in a persistent shell session and return its combined "
        "stdout/stderr and exit code. The session keeps state between calls: `cd`, "
        "exported variables, functions and background jobs persist. Use it to run "
        "programs, tests, builds, git and package managers. Commands get no stdin, so "
        "use non-interactive flags (e.g. `apt-get -y`, `git --no-pager`). A command that "
        f"runs past `timeout` seconds (default {DEFAULT_TIMEOUT_S:g}) is interrupted and "
        "the session lives on; start long-running servers in the background "
        "(`cmd > /tmp/server.log 2>&1 &`) and check on them later. Long output is cut in "
        "the middle, so filter it (grep, tail) when you only need part of it. Prefer "
        "read_file, edit and grep for reading, changing and searching files."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "minLength": 1,
                "description": "The bash command line or script to run.",
            },
            "timeout": {
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": MAX_TIMEOUT_S,
                "description": f"Seconds before the command is interrupted "
                f"(default {DEFAULT_TIMEOUT_S:g}).",
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    }
    read_only = False

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        timeout = float(args.get("timeout", DEFAULT_TIMEOUT_S))
        try:
            result = ctx.env.shell(args["command"], timeout=timeout)
        except SessionClosedError as e:
            # The next call starts a fresh session; the model should know state is gone.
            return ToolOutput(f"the shell session ended ({e}); run the command again", None, True)
        lines = [clip(result.output).rstrip("\n") or "(no output)"]
        if result.timed_out:
            lines.append(
                f"[timed out after {timeout:g}s and was interrupted; the shell session is "
                "still alive. Run long jobs in the background and poll, or pass a larger "
                "timeout.]"
            )
        if result.error:
            lines.append(f"[{result.error}; the next command starts in a fresh shell]")
        lines.append(f"[exit code: {result.exit_code}]")
        return ToolOutput(
            output="\n".join(lines),
            exit_code=result.exit_code,
            is_error=result.timed_out or result.exit_code is None,
        )
