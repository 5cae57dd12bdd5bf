"""Sandboxes on a real container engine (the ROCK layer of openale).

``Sandbox`` / ``AsyncSandbox`` are the embedded API; nothing here imports from
the layers above.
"""

from openale.sandbox.aio import AsyncSandbox
from openale.sandbox.audit import AuditEvent, AuditLog
from openale.sandbox.commands import CommandHandle
from openale.sandbox.errors import (
    EngineUnavailableError,
    FileTooLargeError,
    ImageNotFoundError,
    InvalidSpecError,
    ResourceLimitError,
    SandboxError,
    SandboxFileError,
    SandboxNotFoundError,
    SandboxNotRunningError,
    SessionClosedError,
)
from openale.sandbox.files import FileEntry
from openale.sandbox.reaper import gc
from openale.sandbox.sandbox import Sandbox, Session, delete_snapshot, load_snapshot
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot

__all__ = [
    "AsyncSandbox",
    "AuditEvent",
    "AuditLog",
    "CommandHandle",
    "CommandResult",
    "EngineUnavailableError",
    "FileEntry",
    "FileTooLargeError",
    "ImageNotFoundError",
    "InvalidSpecError",
    "ResourceLimitError",
    "Sandbox",
    "SandboxError",
    "SandboxFileError",
    "SandboxInfo",
    "SandboxNotFoundError",
    "SandboxNotRunningError",
    "SandboxSettings",
    "SandboxSpec",
    "Session",
    "SessionClosedError",
    "Snapshot",
    "delete_snapshot",
    "gc",
    "load_snapshot",
]
