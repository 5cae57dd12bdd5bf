"""Append-only audit log: one JSONL file per sandbox.

Every lifecycle event, command and file operation is recorded with who did it,
when, and its exit code and byte counts. The safety scanner reads these files;
``ale sandbox audit ID`` prints them. A file's mtime doubles as the sandbox's
last-activity time, which the idle-TTL reaper uses.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

EventKind = Literal["lifecycle", "command", "session", "file"]


def _actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers with arbitrary uids)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}:{os.getpid()}"


class AuditEvent(BaseModel):
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))
    sandbox: str
    kind: EventKind
    action: str
    actor: str = Field(default_factory=_actor)
    exit_code: int | None = None
    duration_s: float | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditLog:
    """Writes and reads the audit files under one directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def path(self, sandbox_id: str) -> Path:
        return self.directory / f"{sandbox_id}.jsonl"

    def record(self, sandbox_id: str, kind: EventKind, action: str, **fields: Any) -> AuditEvent:
        event = AuditEvent(sandbox=sandbox_id, kind=kind, action=action, **fields)
        line = event.model_dump_json(exclude_none=True) + "\n"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            # One write() per event on an O_APPEND file: lines from several
            # processes never interleave.
            fd = os.open(self.path(sandbox_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        return event

    def read(self, sandbox_id: str) -> Iterator[AuditEvent]:
        path = self.path(sandbox_id)
        if not path.exists():
            return
        with path.open() as f:
            for line in f:
                if line.strip():
                    yield AuditEvent.model_validate(json.loads(line))

    def touch(self, sandbox_id: str) -> None:
        """Mark activity without an event (a long command is still running)."""
        try:
            os.utime(self.path(sandbox_id))
        except FileNotFoundError:
            pass

    def last_active(self, sandbox_id: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(self.path(sandbox_id).stat().st_mtime, UTC)
        except FileNotFoundError:
            return None
