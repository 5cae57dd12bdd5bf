"""``ale sandbox``: create, use and clean up sandboxes.

Every sandbox made here is detached: it outlives the ``ale`` process until
``ale sandbox rm``, its idle TTL, its deadline, or ``ale sandbox gc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shlex
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from openale.cli.common import UsageError, console, err_console, print_error, user_errors
from openale.cli.terminal import ShellTraffic, isatty, pump_pipe, pump_tty
from openale.sandbox import (
    AuditEvent,
    AuditLog,
    InvalidSpecError,
    Sandbox,
    SandboxError,
    SandboxFileError,
    SandboxInfo,
    SandboxSettings,
    SandboxSpec,
    gc,
)
from openale.sandbox.files import GO_MODE_DIR, GO_MODE_SYMLINK

sandbox_app = typer.Typer(help="Create, use and clean up sandboxes.", no_args_is_help=True)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
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


# -- lifecycle ------------------------------------------------------------------------


@sandbox_app.command()
def create(
    image: Annotated[str | None, typer.Option(help="Image (or alias); default: toolbox.")] = None,
    cpus: Annotated[float | None, typer.Option(help="CPU quota in cores.")] = None,
    memory: Annotated[str | None, typer.Option(help="Memory limit, e.g. 512m, 2g.")] = None,
    pids: Annotated[int | None, typer.Option(help="Maximum number of processes.")] = None,
    network: Annotated[str | None, typer.Option(help="none (default) or bridge.")] = None,
    user: Annotated[str | None, typer.Option(help="user[:group] to run as inside.")] = None,
    workdir: Annotated[str | None, typer.Option(help="Working directory inside.")] = None,
    env: EnvFlag = None,
    ttl: Annotated[
        float | None, typer.Option(help="Idle seconds before reaping (0 = never; default 3600).")
    ] = None,
    deadline: Annotated[
        float | None, typer.Option(help="Hard lifetime in seconds (0 = none, the default).")
    ] = None,
    read_only_root: Annotated[
        bool, typer.Option("--read-only-root", help="Read-only root; workdir and /tmp writable.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a sandbox that outlives this command, and print its id."""
    with user_errors():
        fields = {
            "image": image,
            "cpus": cpus,
            "memory": memory,
            "pids": pids,
            "network": network,
            "user": user,
            "workdir": workdir,
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        if env:
            fields["env"] = parse_env(env)
        if ttl is not None:
            fields["ttl_s"] = ttl or None
        if deadline is not None:
            fields["deadline_s"] = deadline or None
        if read_only_root:
            fields["read_only_root"] = True
        spec = SandboxSpec.parse(**fields)
        sb = Sandbox.create(spec, detach=True)
        if as_json:
            typer.echo(sb.info().model_dump_json(indent=2))
        else:
            typer.echo(sb.id)


@sandbox_app.command("ls")
def list_(
    as_json: JsonFlag = False,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Include stopped and failed sandboxes.")
    ] = False,
) -> None:
    """List sandboxes (running and pending ones unless --all)."""
    with user_errors():
        infos = [i for i in Sandbox.list() if show_all or i.status in ("running", "pending")]
    if as_json:
        typer.echo(json.dumps([i.model_dump(mode="json") for i in infos], indent=2))
        return
    table = Table(
        "id",
        "status",
        "image",
        "created",
        "last active",
        "ttl",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in table.columns:
        column.no_wrap = column.header != "image"
    table.columns[2].overflow = "fold"
    for info in infos:
        table.add_row(
            info.id,
            _status_markup(info.status),
            escape(info.image),
            _ago(info.created_at),
            _ago(info.last_active_at),
            _ttl(info),
        )
    console.print(table)


@sandbox_app.command()
def rm(
    ids: Annotated[list[str] | None, typer.Argument(help="Sandbox ids.")] = None,
    remove_all: Annotated[
        bool, typer.Option("--all", help="Remove every openale sandbox on the engine.")
    ] = False,
) -> None:
    """Stop and delete sandboxes. Every id is tried; any failure exits 1."""
    with user_errors():
        targets = list(dict.fromkeys(ids or []))
        if remove_all:
            targets += [i.id for i in Sandbox.list() if i.id not in targets]
        if not targets:
            raise UsageError("give sandbox ids, or --all")
    failed = False
    for sandbox_id in targets:
        try:
            Sandbox.attach(sandbox_id).close()
            typer.echo(sandbox_id)
        except SandboxError as e:
            print_error(str(e))
            failed = True
    if failed:
        raise typer.Exit(1)


@sandbox_app.command("gc")
def gc_(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only show what would be removed.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove sandboxes past their TTL or deadline, stopped ones, and orphans."""
    with user_errors():
        items = gc(SandboxSettings(), dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps([i.model_dump() for i in items], indent=2))
        return
    if not items:
        console.print("nothing to remove")
        return
    table = Table("id", "action", "reason", box=box.SIMPLE_HEAD)
    table.columns[0].no_wrap = True
    for item in items:
        action = "would remove" if dry_run else "removed" if item.removed else "already gone"
        table.add_row(item.id, action, escape(item.reason))
    console.print(table)


@sandbox_app.command()
def snapshot(
    sandbox_id: Annotated[str, typer.Argument(help="Sandbox id.")], as_json: JsonFlag = False
):
    """Commit a sandbox's filesystem to an image; prints the snapshot id."""
    with user_errors():
        snap = Sandbox.attach(sandbox_id).snapshot()
    typer.echo(snap.model_dump_json(indent=2) if as_json else snap.id)


@sandbox_app.command()
def fork(
    snapshot_id: Annotated[str, typer.Argument(help="Snapshot id (snap-...).")],
    n: Annotated[int, typer.Option("-n", min=1, help="How many sandboxes to start.")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Start N detached sandboxes from a snapshot; prints their ids."""
    with user_errors():
        forks = Sandbox.fork(snapshot_id, n, detach=True)
        if as_json:
            typer.echo(json.dumps([sb.info().model_dump(mode="json") for sb in forks], indent=2))
        else:
            typer.echo("\n".join(sb.id for sb in forks))


# -- commands and shells --------------------------------------------------------------


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
        _write(sys.stdout, result.stdout.encode())
        _write(sys.stderr, result.stderr.encode())
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
        sb.ensure_running()
        code, _ = sb.runtime.exec_simple(sb.container, ["sh", "-c", "command -v bash"])
        argv = ["bash"] if code == 0 else ["sh"]
        interactive = isatty(sys.stdin) and isatty(sys.stdout)
        env = {"TERM": os.environ.get("TERM", "xterm")} if interactive else {}
        exec_id, sock = sb.runtime.exec_start(
            sb.container, argv, env=env, user=sb.spec.user, tty=interactive, stdin=True
        )
        started = time.monotonic()
        traffic = ShellTraffic(sb.audit.path(sb.id))
        exit_code, interrupted = None, False
        try:
            if interactive:
                pump_tty(sock, exec_id, sb.runtime.api, traffic)
            else:
                pump_pipe(sock, traffic)
            exit_code = sb.runtime.exec_exit_code(exec_id)
        except KeyboardInterrupt:  # piped mode only: on a terminal Ctrl-C goes to the shell
            interrupted = True
        finally:
            sock.close()
            sb.audit.record(
                sb.id,
                "session",
                "shell",
                exit_code=exit_code,
                duration_s=time.monotonic() - started,
                bytes_in=traffic.sent,
                bytes_out=traffic.received,
                detail={
                    "argv": argv,
                    "tty": interactive,
                    "input": traffic.typed.decode(errors="replace"),
                    "input_truncated": traffic.sent > len(traffic.typed),
                },
            )
    if interrupted:
        raise typer.Exit(130)
    raise typer.Exit(exit_code if exit_code is not None else 255)


def _write(stream, data: bytes) -> None:
    stream.flush()
    stream.buffer.write(data)
    stream.buffer.flush()


# -- files ----------------------------------------------------------------------------

_REMOTE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*):(.*)$")


def split_location(arg: str) -> tuple[str | None, str]:
    """``ID:/path`` -> (id, path); anything else is a local path (id None)."""
    m = None if arg.startswith(("/", ".", "~")) else _REMOTE.match(arg)
    return (m.group(1), m.group(2) or ".") if m else (None, arg)


@sandbox_app.command()
def cp(
    src: Annotated[str, typer.Argument(help="ID:PATH or a local path ('-' = stdin).")],
    dst: Annotated[str, typer.Argument(help="ID:PATH or a local path ('-' = stdout).")],
) -> None:
    """Copy files or directories between the sandbox and this machine.

    As with `docker cp`: a directory copied onto an existing directory lands
    inside it; end SRC with `/.` to copy only its contents.
    """
    with user_errors():
        src_id, src_path = split_location(src)
        dst_id, dst_path = split_location(dst)
        if (src_id is None) == (dst_id is None):
            raise UsageError("exactly one of SRC and DST must be ID:PATH")
        if src_id is not None:
            sb = Sandbox.attach(src_id)
            sb.ensure_running()
            total, where = _download(sb, src_path, dst_path)
        else:
            sb = Sandbox.attach(dst_id)
            sb.ensure_running()
            total, where = _upload(sb, src_path, dst_path)
    if where != "-":
        err_console.print(f"copied {total} bytes to {escape(where)}", highlight=False)


def _remote_stat(sb: Sandbox, path: str) -> dict | None:
    """The engine's stat of ``path`` with symlinks followed; None if it does not exist."""
    for _ in range(8):
        stat = sb.runtime.stat(sb.container, path)
        if stat is None or not stat.get("mode", 0) & GO_MODE_SYMLINK:
            return stat and {**stat, "path": path}
        path = posixpath.normpath(posixpath.join(posixpath.dirname(path), stat["linkTarget"]))
    raise SandboxFileError(f"too many levels of symbolic links at {path!r}")


def _remote_abs(sb: Sandbox, path: str) -> str:
    return posixpath.normpath(posixpath.join(sb.spec.workdir, path))


def _upload(sb: Sandbox, local_arg: str, remote: str) -> tuple[int, str]:
    target = _remote_abs(sb, remote)
    stat = _remote_stat(sb, target)
    remote_is_dir = bool(stat and stat["mode"] & GO_MODE_DIR)
    if stat:
        target = stat["path"]
    if local_arg == "-":
        if remote_is_dir:
            raise UsageError(f"{remote!r} is a directory; name the file to write from stdin")
        data = sys.stdin.buffer.read()
        sb.files.write(target, data)
        return len(data), f"{sb.id}:{target}"
    local = Path(local_arg).expanduser()
    if not local.exists():
        raise SandboxFileError(f"no such local file or directory: {local_arg}")
    if local.is_dir():
        if stat and not remote_is_dir:
            raise SandboxFileError(f"cannot copy directory {local_arg} onto file {remote!r}")
        if remote_is_dir and not local_arg.endswith("/."):
            target = posixpath.join(target, local.resolve().name)
        return sb.files.upload_dir(local, target), f"{sb.id}:{target}"
    if remote_is_dir or remote.endswith("/"):
        target = posixpath.join(target, local.name)
    data = local.read_bytes()
    sb.files.write(target, data, mode=local.stat().st_mode & 0o7777)
    return len(data), f"{sb.id}:{target}"


def _download(sb: Sandbox, remote: str, local_arg: str) -> tuple[int, str]:
    stat = _remote_stat(sb, _remote_abs(sb, remote))
    if stat is None:
        raise SandboxFileError(f"no such file or directory in {sb.id}: {remote!r}")
    source = stat["path"]
    local = Path(local_arg).expanduser()
    if stat["mode"] & GO_MODE_DIR:
        if local_arg == "-":
            raise UsageError("a directory cannot be written to stdout")
        if local.exists() and not local.is_dir():
            raise SandboxFileError(f"cannot copy directory {remote!r} onto file {local_arg}")
        if local.is_dir() and not remote.endswith("/."):
            local = local / posixpath.basename(source)
        return sb.files.download_dir(source, local), str(local)
    data = sb.files.read(source)
    if local_arg == "-":
        _write(sys.stdout, data)
        return len(data), "-"
    if local.is_dir():
        local = local / posixpath.basename(source)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    local.chmod(stat["mode"] & 0o7777)
    return len(data), str(local)


# -- audit ----------------------------------------------------------------------------


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
    log = AuditLog(SandboxSettings().audit_dir)
    with user_errors():
        if not log.path(sandbox_id).exists():
            raise SandboxError(f"no audit log for {sandbox_id!r} in {log.directory}")
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


# -- formatting -----------------------------------------------------------------------


def _ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    return _duration((datetime.now(UTC) - when).total_seconds()) + " ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _ttl(info: SandboxInfo) -> str:
    if info.ttl_s is None:
        return "never"
    last = info.last_active_at or info.created_at
    left = info.ttl_s - (datetime.now(UTC) - last).total_seconds()
    return f"{_duration(left)} left"


def _status_markup(status: str) -> str:
    color = {"running": "green", "pending": "yellow", "failed": "red"}.get(status, "dim")
    return f"[{color}]{status}[/{color}]"
