"""Typed errors of the task layer."""

from pathlib import Path

from openale.sandbox.errors import SandboxError


class TaskError(SandboxError):
    """Base class of task errors."""


class TaskLoadError(TaskError):
    """A task folder is malformed; the message names the file and the field."""

    status_code = 422

    def __init__(self, path: Path, problem: str, field: str | None = None):
        self.path, self.problem, self.field = Path(path), problem, field
        where = f"{path}" + (f" [{field}]" if field else "")
        super().__init__(f"{where}: {problem}")


class EnvironmentBuildError(TaskError):
    """The task's environment image failed to build; the message carries the log's tail."""

    def __init__(self, task: str, message: str, log: str):
        self.task, self.log = task, log
        tail = "\n".join(log.splitlines()[-25:])
        super().__init__(f"building the environment of {task} failed: {message}\n{tail}")
