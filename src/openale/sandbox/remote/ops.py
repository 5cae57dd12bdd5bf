"""Every remote operation written once, without I/O, for both faces of the remote SDK.

An operation is a generator: it yields the ``Call``s it needs, receives each
answer (an ``httpx.Response``, or the typed error thrown back into it), and
returns the parsed result. ``RemoteHttp.run`` drives it with httpx's blocking
``Client``, ``AsyncRemoteHttp.run`` with its ``AsyncClient``: request building,
answer parsing and error handling (a 404 on delete is not an error, ...) are
the same code for ``RemoteSandbox`` and ``AsyncRemoteSandbox`` (the sans-I/O
way of h11 and httpx's own core).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Generator
from typing import Any, TypeVar

import httpx

from openale.sandbox.errors import (
    SandboxError,
    SandboxFileError,
    SandboxNotFoundError,
    SandboxNotRunningError,
    SessionClosedError,
)
from openale.sandbox.files import FileEntry
from openale.sandbox.remote import calls
from openale.sandbox.remote.wire import ExistsResponse, SessionCreated
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot

T = TypeVar("T")
Operation = Generator[calls.Call, httpx.Response, T]

# ``stat -L`` of one path as "kind<TAB>size mode mtime<TAB>resolved path"; exit 3 if missing.
_STAT = (
    '[ -e "$1" ] || exit 3; if [ -d "$1" ]; then t=d; else t=f; fi; '
    'printf \'%s\\t%s\\t%s\\n\' "$t" "$(stat -L -c \'%s %a %Y\' "$1")" "$(readlink -f "$1")"'
)


def snapshot_id(snapshot: Snapshot | str) -> str:
    return snapshot.id if isinstance(snapshot, Snapshot) else snapshot


# -- sandboxes ----------------------------------------------------------------------------


def create(
    spec: SandboxSpec | dict | None, fields: dict[str, Any], envhub: str | None, key: str | None
) -> Operation[SandboxInfo]:
    answer = yield calls.create(spec, fields, envhub, key)
    return SandboxInfo.model_validate(answer.json())


def get(sandbox_id: str) -> Operation[SandboxInfo]:
    answer = yield calls.get(sandbox_id)
    return SandboxInfo.model_validate(answer.json())


def list_all(all_owners: bool) -> Operation[list[SandboxInfo]]:
    answer = yield calls.list_all(all_owners)
    return [SandboxInfo.model_validate(row) for row in answer.json()]


def fork(
    snapshot: Snapshot | str, n: int, overrides: dict[str, Any]
) -> Operation[list[SandboxInfo]]:
    if n < 1:
        raise ValueError("n must be at least 1")
    answer = yield calls.fork(snapshot_id(snapshot), n, overrides)
    return [SandboxInfo.model_validate(row) for row in answer.json()]


def delete_snapshot(snapshot: Snapshot | str) -> Operation[None]:
    yield calls.delete_snapshot(snapshot_id(snapshot))


def snapshot(sandbox_id: str) -> Operation[Snapshot]:
    answer = yield calls.snapshot(sandbox_id)
    return Snapshot.model_validate(answer.json())


def restart(sandbox_id: str) -> Operation[None]:
    yield calls.restart(sandbox_id)


def delete(sandbox_id: str) -> Operation[None]:
    try:
        yield calls.delete(sandbox_id)
    except SandboxError as e:
        if e.status_code != 404:  # already deleted (reaped, or a retried DELETE)
            raise


# -- commands and sessions ----------------------------------------------------------------


def run(sandbox_id: str, cmd: str, **options: Any) -> Operation[CommandResult]:
    answer = yield calls.run(sandbox_id, cmd, **options)
    return CommandResult.model_validate(answer.json())


def interrupt_command(sandbox_id: str, command_id: str) -> Operation[None]:
    try:
        yield calls.interrupt_command(sandbox_id, command_id)
    except SandboxNotFoundError:
        pass  # it ended meanwhile: nothing left to kill, as embedded


def session_create(
    sandbox_id: str, cwd: str | None, env: dict[str, str] | None, user: str | None
) -> Operation[str]:
    answer = yield calls.session_create(sandbox_id, cwd, env, user)
    return SessionCreated.model_validate(answer.json()).session_id


def session_run(call: calls.Call) -> Operation[CommandResult]:
    """A session command over plain HTTP (where its WebSocket cannot serve)."""
    answer = yield call
    return CommandResult.model_validate(answer.json())


def session_interrupt(sandbox_id: str, session_id: str) -> Operation[None]:
    yield calls.session_interrupt(sandbox_id, session_id)


def session_delete(sandbox_id: str, session_id: str) -> Operation[None]:
    try:
        yield calls.session_delete(sandbox_id, session_id)
    except (SessionClosedError, SandboxNotRunningError):
        pass  # already gone with its shell or its sandbox
    except SandboxError as e:
        if e.status_code != 404:
            raise


# -- files --------------------------------------------------------------------------------


def file_write(sandbox_id: str, path: str, data: bytes | str, mode: int | None) -> Operation[None]:
    payload = data.encode() if isinstance(data, str) else bytes(data)
    yield calls.file_write(sandbox_id, path, payload, mode)


def file_read(sandbox_id: str, path: str) -> Operation[bytes]:
    answer = yield calls.file_read(sandbox_id, path)
    return answer.content


def file_exists(sandbox_id: str, path: str) -> Operation[bool]:
    answer = yield calls.file_exists(sandbox_id, path)
    return ExistsResponse.model_validate(answer.json()).exists


def file_list(sandbox_id: str, path: str, depth: int) -> Operation[list[FileEntry]]:
    answer = yield calls.file_list(sandbox_id, path, depth)
    return [FileEntry.model_validate(row) for row in answer.json()]


def file_stat(sandbox_id: str, path: str) -> Operation[FileEntry | None]:
    """``path`` with symlinks followed, or None. The API has no stat route: a command asks."""
    command = f"sh -c {shlex.quote(_STAT)} sh {shlex.quote(path)}"
    # As root, like the engine's own stat of the embedded sandbox: any path can be seen.
    result = yield from run(sandbox_id, command, timeout=60.0, env=None, cwd=None, user="0")
    if result.exit_code == 3:
        return None
    fields = result.stdout.rstrip("\n").split("\t", 2)
    numbers = fields[1].split() if len(fields) == 3 else []
    if result.exit_code != 0 or len(numbers) != 3:
        raise SandboxFileError(f"cannot stat {path!r}: {(result.stderr or result.stdout).strip()}")
    kind, resolved = fields[0], fields[2]
    size, mode, mtime = numbers
    return FileEntry(
        path=resolved or path,
        name=posixpath.basename(resolved or path),
        is_dir=kind == "d",
        size=int(size),
        mode=int(mode, 8),
        mtime=float(mtime),
        kind=kind,
    )
