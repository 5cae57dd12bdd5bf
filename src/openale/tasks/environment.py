"""Building task environments, through the sandbox layer's one ``ImageBuilder``.

This adapter knows the task layout: the build context (less the tests and
solution in the legacy layout), the task's build timeout and its
``openale.task`` label. The builder's digest covers every file of the context
(path, mode, bytes) and the engine ids of the images named in ``FROM`` lines,
so a changed file or a rebuilt base image makes a new environment image and
nothing else does. The digest is in the tag, so a built environment is found
by name.
"""

from __future__ import annotations

import re
import time

from openale.sandbox.images.builder import BuildContext, ImageBuilder
from openale.sandbox.images.names import ENV_REPOSITORY, ImageBuildError
from openale.sandbox.settings import SandboxSettings
from openale.tasks.errors import EnvironmentBuildError
from openale.tasks.model import Task

TASK_LABEL = "openale.task"
# The legacy layout builds from the task root: tests and solutions must stay
# out of the image, or the agent could read them.
_LEGACY_EXCLUDED = frozenset({"tests", "solution.sh", "run-tests.sh", "task.yaml"})


class EnvironmentBuilder:
    """Builds (or finds in the cache) the image of a task's environment."""

    def __init__(self, settings: SandboxSettings | None = None):
        self.settings = settings or SandboxSettings()
        self.images = ImageBuilder(self.settings)
        self.client = self.images.client

    def digest(self, task: Task) -> str:
        """The build-context digest of the task's environment (hex)."""
        return self.images.digest(_context(task))

    def image_tag(self, task: Task, digest: str | None = None) -> str:
        """``openale/env/<task>:<digest16>``: content-addressed, so a tag is never rebuilt."""
        name = re.sub(r"[^a-z0-9_.-]", "-", task.name.lower()).strip("-.") or "task"
        return f"{ENV_REPOSITORY}/{name}:{(digest or self.digest(task))[:16]}"

    def build(self, task: Task, *, force: bool = False) -> tuple[str, float, bool]:
        """The environment image: ``(tag, seconds spent, built_now)``; cached by digest."""
        started = time.monotonic()
        digest = self.digest(task)
        tag = self.image_tag(task, digest)
        try:
            _, built = self.images.build(
                _context(task),
                tag,
                digest=digest[:16],  # as in the tag, and as EnvHub labels its images
                labels={TASK_LABEL: task.name},
                timeout_s=int(task.config.environment.build_timeout_sec),
                reuse=not force,
            )
        except ImageBuildError as e:
            raise EnvironmentBuildError(task.name, e.reason, e.log) from None
        return tag, time.monotonic() - started, built


def _context(task: Task) -> BuildContext:
    if task.dockerfile != task.build_context / "Dockerfile":
        # The loader guarantees this for both layouts; the builder relies on it.
        raise EnvironmentBuildError(task.name, "the Dockerfile must be the context's top", "")
    exclude = _LEGACY_EXCLUDED if task.layout == "terminal-bench" else frozenset()
    return BuildContext(task.build_context, exclude)
