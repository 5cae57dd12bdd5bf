"""Building task environments, cached by a digest of what goes into the image.

The digest covers every file of the build context (path, mode, bytes) and the
engine ids of the images named in ``FROM`` lines, so a changed file or a
rebuilt base image makes a new environment image and nothing else does.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
import time
from pathlib import Path

import docker.errors

from openale.sandbox.engine import docker_client
from openale.sandbox.images import apply_aliases
from openale.sandbox.settings import SandboxSettings
from openale.tasks.errors import EnvironmentBuildError
from openale.tasks.model import Task

ENV_REPOSITORY = "openale/env"
DIGEST_LABEL = "openale.env.digest"
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE | re.MULTILINE)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def base_images(dockerfile_text: str) -> list[str]:
    """Images named in ``FROM`` lines, minus references to earlier build stages."""
    stages = {m.lower() for m in re.findall(r"\bAS\s+(\S+)", dockerfile_text, re.IGNORECASE)}
    return [m for m in _FROM.findall(dockerfile_text) if m.lower() not in stages]


class EnvironmentBuilder:
    """Builds (or finds in the cache) the image of a task's environment."""

    def __init__(self, settings: SandboxSettings | None = None):
        self.settings = settings or SandboxSettings()
        self.client = docker_client(self.settings)
        self._aliases_checked = False

    def digest(self, task: Task) -> str:
        h = hashlib.sha256()
        context = task.build_context
        for path in sorted(context.rglob("*")):
            if path.is_file() and not self._excluded(task, path):
                h.update(str(path.relative_to(context)).encode() + b"\0")
                h.update(oct(path.stat().st_mode & 0o777).encode() + b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
        h.update(b"dockerfile\0" + task.dockerfile.read_bytes())
        for image in base_images(task.dockerfile.read_text()):
            h.update(image.encode() + b"=" + (self._image_id(image) or "missing").encode())
        return h.hexdigest()

    def image_tag(self, task: Task, digest: str | None = None) -> str:
        name = re.sub(r"[^a-z0-9_.-]", "-", task.name.lower()).strip("-.") or "task"
        return f"{ENV_REPOSITORY}/{name}:{(digest or self.digest(task))[:16]}"

    def build(self, task: Task, *, force: bool = False) -> tuple[str, float, bool]:
        """The environment image: ``(tag, seconds spent, built_now)``; cached by digest."""
        started = time.monotonic()
        self._ensure_aliases()
        digest = self.digest(task)
        tag = self.image_tag(task, digest)
        with self._lock(tag):
            if not force and self._image_id(tag):
                return tag, time.monotonic() - started, False
            self._build(task, tag, digest)
        return tag, time.monotonic() - started, True

    # -- internals --------------------------------------------------------------------

    def _build(self, task: Task, tag: str, digest: str) -> None:
        log: list[str] = []
        dockerfile = task.dockerfile.relative_to(task.build_context).as_posix()
        try:
            stream = self.client.api.build(
                fileobj=self._context(task),
                custom_context=True,
                dockerfile=dockerfile,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                labels={DIGEST_LABEL: digest, "openale.task": task.name},
                timeout=int(task.config.environment.build_timeout_sec),
            )
            for chunk in stream:
                if "stream" in chunk:
                    log.extend(chunk["stream"].rstrip("\n").splitlines())
                if "error" in chunk:
                    raise EnvironmentBuildError(task.name, chunk["error"].strip(), "\n".join(log))
        except docker.errors.APIError as e:
            raise EnvironmentBuildError(task.name, str(e.explanation), "\n".join(log)) from None
        except (docker.errors.DockerException, OSError) as e:
            # A read timeout of the build stream lands here.
            message = f"{type(e).__name__}: {e}"
            raise EnvironmentBuildError(task.name, message, "\n".join(log)) from None
        if not self._image_id(tag):
            raise EnvironmentBuildError(task.name, "the engine reported no image", "\n".join(log))

    def _context(self, task: Task) -> io.BytesIO:
        """The build context as a tar, without what must never reach the image."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path in sorted(task.build_context.rglob("*")):
                if not self._excluded(task, path):
                    arcname = path.relative_to(task.build_context).as_posix()
                    tar.add(path, arcname=arcname, recursive=False)
        buf.seek(0)
        return buf

    def _excluded(self, task: Task, path: Path) -> bool:
        # The legacy layout builds from the task root: tests and solutions must
        # stay out of the image, or the agent could read them.
        if task.layout != "terminal-bench":
            return False
        rel = path.relative_to(task.build_context).parts
        return rel[0] in {"tests", "solution.sh", "run-tests.sh", "task.yaml"}

    def _ensure_aliases(self) -> None:
        if not self._aliases_checked:
            apply_aliases(self.settings)
            self._aliases_checked = True

    def _image_id(self, name: str) -> str | None:
        try:
            return self.client.api.inspect_image(name)["Id"]
        except docker.errors.ImageNotFound:
            return None

    @staticmethod
    def _lock(key: str) -> threading.Lock:
        with _locks_guard:
            return _locks.setdefault(key, threading.Lock())
