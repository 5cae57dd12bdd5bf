"""``ale sandbox cp``: files and directories between a sandbox and this machine.

Only the sandbox API (``AnySandbox``: ``files.stat/read/write/upload_dir/
download_dir``) is used, so it works the same on an embedded and a remote sandbox.
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from openale.cli.common import UsageError, err_console, user_errors
from openale.cli.sandbox.app import sandbox_app
from openale.sandbox import AnySandbox, Sandbox, SandboxFileError
from openale.sandbox.terminal import write_stream

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


def _remote_abs(sb: AnySandbox, path: str) -> str:
    return posixpath.normpath(posixpath.join(sb.spec.workdir, path))


def _upload(sb: AnySandbox, local_arg: str, remote: str) -> tuple[int, str]:
    target = _remote_abs(sb, remote)
    stat = sb.files.stat(target)
    remote_is_dir = bool(stat and stat.is_dir)
    if stat:
        target = stat.path
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


def _download(sb: AnySandbox, remote: str, local_arg: str) -> tuple[int, str]:
    stat = sb.files.stat(_remote_abs(sb, remote))
    if stat is None:
        raise SandboxFileError(f"no such file or directory in {sb.id}: {remote!r}")
    source = stat.path
    local = Path(local_arg).expanduser()
    if stat.is_dir:
        if local_arg == "-":
            raise UsageError("a directory cannot be written to stdout")
        if local.exists() and not local.is_dir():
            raise SandboxFileError(f"cannot copy directory {remote!r} onto file {local_arg}")
        if local.is_dir() and not remote.endswith("/."):
            local = local / posixpath.basename(source)
        return sb.files.download_dir(source, local), str(local)
    data = sb.files.read(source)
    if local_arg == "-":
        write_stream(sys.stdout, data)
        return len(data), "-"
    if local.is_dir():
        local = local / posixpath.basename(source)
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    local.chmod(stat.mode)
    return len(data), str(local)
