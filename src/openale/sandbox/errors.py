"""Typed errors of the sandbox layer.

Every error a user can act on is one of these; the HTTP control plane maps them
to status codes through ``status_code``.
"""


class SandboxError(Exception):
    """Base class of every sandbox error."""

    status_code = 500


class InvalidSpecError(SandboxError, ValueError):
    """A ``SandboxSpec`` (or a CLI flag that builds one) is not valid."""

    status_code = 422


class ImageNotFoundError(SandboxError):
    """The image does not exist locally and cannot be pulled."""

    status_code = 404


class SandboxNotFoundError(SandboxError):
    """No sandbox with this id exists on the engine."""

    status_code = 404


class SandboxNotRunningError(SandboxError):
    """The sandbox exists but is not running (stopped, reaped or failed)."""

    status_code = 409


class EngineUnavailableError(SandboxError):
    """The container engine (Docker) cannot be reached."""

    status_code = 503


class SessionClosedError(SandboxError):
    """The bash session has exited (``exit`` was run, or the sandbox stopped)."""

    status_code = 409


class FileTooLargeError(SandboxError):
    """A file or directory transfer is larger than the configured cap."""

    status_code = 413


class SandboxFileError(SandboxError):
    """A file operation failed inside the sandbox (missing path, read-only root, ...)."""

    status_code = 400


class ResourceLimitError(SandboxError):
    """A process hit a sandbox limit (pids) and the sandbox had to be recovered."""

    status_code = 429
