"""Verifiable tasks: Harbor / Terminal-Bench layouts, environment builds, verifiers, suites."""

from openale.tasks.environment import EnvironmentBuilder
from openale.tasks.errors import EnvironmentBuildError, TaskError, TaskLoadError
from openale.tasks.loader import builtin_suites, load_task, load_tasks, resolve_tasks_dir
from openale.tasks.model import Task, TaskConfig
from openale.tasks.verifier import VerifierResult, verify

__all__ = [
    "EnvironmentBuildError",
    "EnvironmentBuilder",
    "Task",
    "TaskConfig",
    "TaskError",
    "TaskLoadError",
    "VerifierResult",
    "builtin_suites",
    "load_task",
    "load_tasks",
    "resolve_tasks_dir",
    "verify",
]
