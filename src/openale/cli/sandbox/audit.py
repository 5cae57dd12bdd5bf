"""``ale sandbox audit``: a sandbox's audit log, as a table, JSON lines, or followed."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from openale.cli.common import console, user_errors
from openale.cli.sandbox.app import sandbox_app
from openale.sandbox import AuditEvent, AuditLog, SandboxError, SandboxSettings
from openale.sandbox.settings import is_remote


@sandbox_app.command()
def audit(
    sandbox_id: Annotated[str, typer.Argument(help="Sandbox id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C or deletion."),
    ] = False,
) -> None:
    """Show a sandbox's audit log: lifecycle, commands with exit codes, file operations."""
    settings = SandboxSettings()
    log = AuditLog(settings.audit_dir)
    with user_errors():
        if not log.path(sandbox_id).exists():
            where = f"in {log.directory}"
            if is_remote(None, settings):
                # A control plane keeps its own audit (who, route, status), not this file.
                where += f"; the server's audit is GET {settings.server}/v1/audit?sandbox=ID"
            raise SandboxError(f"no audit log for {sandbox_id!r} {where}")
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            for event in _tail(log.path(sandbox_id)):
                if as_json:
                    typer.echo(event.model_dump_json(exclude_none=True))
                else:
                    console.print(_event_line(event), highlight=False, soft_wrap=True)
        return
    events = list(log.read(sandbox_id))
    if as_json:
        for event in events:
            typer.echo(event.model_dump_json(exclude_none=True))
        return
    table = Table(
        "time", "kind", "action", "exit", "duration", "in/out", "detail", box=box.SIMPLE_HEAD
    )
    for column in table.columns[:-1]:
        column.no_wrap = True
    table.columns[-1].overflow = "fold"
    for e in events:
        table.add_row(
            e.ts.astimezone().strftime("%H:%M:%S"),
            e.kind,
            e.action,
            "" if e.exit_code is None else str(e.exit_code),
            "" if e.duration_s is None else f"{e.duration_s:.2f}s",
            _bytes_io(e),
            escape(_event_detail(e)),
        )
    console.print(table)


def _tail(path: Path, poll_s: float = 0.2) -> Iterator[AuditEvent]:
    """Events of an audit file as they are appended; ends after the sandbox is deleted."""
    offset, pending = 0, b""
    while True:
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
        offset += len(chunk)
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                event = AuditEvent.model_validate_json(line)
                yield event
                if event.kind == "lifecycle" and event.action == "deleted":
                    return
        time.sleep(poll_s)


def _event_line(e: AuditEvent) -> str:
    parts = [e.ts.astimezone().strftime("%H:%M:%S.%f")[:-3], f"{e.kind}/{e.action}"]
    if e.exit_code is not None:
        parts.append(f"exit={e.exit_code}")
    if e.duration_s is not None:
        parts.append(f"{e.duration_s:.2f}s")
    if detail := _event_detail(e):
        parts.append(escape(detail))
    return "  ".join(parts)


def _event_detail(e: AuditEvent) -> str:
    for key in ("cmd", "path", "reaped", "error", "snapshot"):
        if key in e.detail:
            return str(e.detail[key])
    if e.action == "shell":
        return json.dumps(e.detail.get("input", ""))
    return ""


def _bytes_io(e: AuditEvent) -> str:
    if e.bytes_in is None and e.bytes_out is None:
        return ""
    return f"{e.bytes_in or 0}/{e.bytes_out or 0}"
