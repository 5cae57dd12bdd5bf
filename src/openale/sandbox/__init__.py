"""Sandboxes on a real container engine (the ROCK layer of openale).

``Sandbox`` / ``AsyncSandbox`` are the API, embedded or (``server=``) remote
through ``openale.sandbox.remote``; ``AnySandbox`` is the type both satisfy.
Nothing here imports from the layers above.
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
from openale.sandbox.protocol import AnyAsyncSandbox, AnySandbox
from openale.sandbox.reaper import gc
from openale.sandbox.sandbox import Sandbox
from openale.sandbox.session import Session
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.snapshots import delete_snapshot, load_snapshot
from openale.sandbox.spec import CommandResult, SandboxInfo, SandboxSpec, Snapshot

__all__ = [
    "AnyAsyncSandbox",
    "AnySandbox",
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
