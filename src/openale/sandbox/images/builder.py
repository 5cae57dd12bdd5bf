"""``ImageBuilder``: the one way openale builds an image from a Dockerfile folder.

The toolbox image, EnvHub environments and task environments all build here,
so they share:

- one build-context digest: every file's path, mode and bytes (a link's
  target) and the engine ids of the ``FROM`` images, so a changed file or a
  rebuilt base image gives a new digest and nothing else does;
- one ``FROM`` parser (``dockerfile.from_images``);
- one build loop: never pulls (every ``FROM`` image must be on the engine;
  the alias names are tagged first, onto base images that already trust the
  extra CA certificates), sends each log line to a callback as it comes and
  keeps the log for the error, gives up after a timeout, and builds one tag
  at a time in this process.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import docker.errors

from openale.sandbox.engine import docker_client
from openale.sandbox.images.aliases import apply_aliases
from openale.sandbox.images.dockerfile import from_images
from openale.sandbox.images.names import DIGEST_LABEL, ImageBuildError
from openale.sandbox.settings import SandboxSettings

LogSink = Callable[[str], None]
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class BuildContext:
    """A folder with a ``Dockerfile`` at its top, less the top-level names in ``exclude``."""

    folder: Path
    exclude: frozenset[str] = frozenset()

    def files(self) -> list[Path]:
        """What goes to the engine: every path under the folder, sorted, less the excluded."""
        return [
            path
            for path in sorted(self.folder.rglob("*"))
            if path.relative_to(self.folder).parts[0] not in self.exclude
        ]

    def from_images(self) -> list[str]:
        return from_images((self.folder / "Dockerfile").read_text(errors="replace"))

    def tar(self) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path in self.files():
                tar.add(path, arcname=path.relative_to(self.folder).as_posix(), recursive=False)
        buf.seek(0)
        return buf


class Built(NamedTuple):
    """The image a build left under its tag, and whether this call built it."""

    image_id: str
    built: bool


class ImageBuilder:
    """Builds images from Dockerfile folders on the settings' engine; see the module doc."""

    def __init__(self, settings: SandboxSettings | None = None):
        self.settings = settings or SandboxSettings()
        self.client = docker_client(self.settings)
        self.api = self.client.api
        self._aliases_done = False

    def ensure_aliases(self) -> None:
        """Tag the alias names (``FROM ubuntu:24.04`` and the like) onto their targets.

        Once every alias is in place this builder stops checking; until then
        (a target not built yet) every call tries again.
        """
        if not self._aliases_done:
            applied = apply_aliases(self.settings)
            self._aliases_done = len(applied) == len(self.settings.image_aliases)

    def image_id(self, image: str) -> str | None:
        try:
            return self.api.inspect_image(image)["Id"]
        except docker.errors.ImageNotFound:
            return None

    def labels(self, image: str) -> dict[str, str] | None:
        """The image's labels, or None when there is no such image."""
        try:
            return self.api.inspect_image(image)["Config"].get("Labels") or {}
        except docker.errors.ImageNotFound:
            return None

    def digest(self, context: BuildContext) -> str:
        """The build-context digest (hex): files and ``FROM`` image ids, see the module doc."""
        self.ensure_aliases()
        h = hashlib.sha256()
        for path in context.files():
            rel = path.relative_to(context.folder).as_posix().encode()
            if path.is_symlink():
                h.update(b"L" + rel + b"\0" + str(path.readlink()).encode() + b"\0")
            elif path.is_file():
                h.update(b"F" + rel + b"\0" + oct(path.stat().st_mode & 0o777).encode() + b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
        for base in context.from_images():
            h.update(b"B" + base.encode() + b"=" + (self.image_id(base) or "missing").encode())
        return h.hexdigest()

    def build(
        self,
        context: BuildContext,
        tag: str,
        *,
        digest: str | None = None,
        labels: dict[str, str] | None = None,
        nocache: bool = False,
        timeout_s: int,
        log: LogSink | None = None,
        reuse: bool = False,
    ) -> Built:
        """``docker build`` of the context as ``tag``, every log line to ``log``.

        ``digest`` goes on the image as the ``DIGEST_LABEL`` label. With
        ``reuse``, an image already under ``tag`` (built by another thread
        while this one waited for the tag) is kept. A failure raises
        ``ImageBuildError`` whose ``log`` is the build log.
        """
        with _lock(tag):
            if reuse and (image_id := self.image_id(tag)):
                return Built(image_id, False)
            self.ensure_aliases()
            for base in context.from_images():
                if self.image_id(base) is None:
                    raise ImageBuildError(
                        f"FROM {base}: the image is not on the engine and no registry is used; "
                        "run `ale images bootstrap` or build it first"
                    )
            labels = {**(labels or {}), **({DIGEST_LABEL: digest} if digest else {})}
            return Built(self._build(context, tag, labels, nocache, timeout_s, log), True)

    def _build(
        self,
        context: BuildContext,
        tag: str,
        labels: dict[str, str],
        nocache: bool,
        timeout_s: int,
        log: LogSink | None,
    ) -> str:
        kept: list[str] = []

        def keep(line: str) -> None:
            kept.append(line)
            if log is not None:
                log(line)

        error = None
        lines = _LineSplitter(keep)
        try:
            stream = self.api.build(
                fileobj=context.tar(),
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                nocache=nocache,
                decode=True,
                labels=labels,
                timeout=timeout_s,
            )
            for chunk in stream:
                lines.feed(chunk.get("stream") or chunk.get("status") or "")
                if "error" in chunk:
                    lines.flush()
                    error = chunk["error"].strip()
                    keep(error)
        except docker.errors.APIError as e:
            error = str(e.explanation or e)
        except (docker.errors.DockerException, OSError) as e:
            error = f"{type(e).__name__}: {e}"  # a read timeout of the build stream lands here
        lines.flush()
        image_id = self.image_id(tag) if error is None else None
        if error is None and image_id is None:
            error = "the engine finished without producing the image"
        if error is not None:
            raise ImageBuildError(f"docker build of {tag} failed: {error}", "\n".join(kept))
        return image_id


class _LineSplitter:
    """Whole lines out of a stream whose chunks may end mid-line (long RUN output)."""

    def __init__(self, log: LogSink):
        self.log = log
        self.pending = ""

    def feed(self, text: str) -> None:
        # A carriage return (progress bars) ends a line as a newline does.
        *complete, self.pending = (self.pending + text).replace("\r", "\n").split("\n")
        for line in complete:
            if line.strip():
                self.log(line.rstrip())

    def flush(self) -> None:
        if self.pending.strip():
            self.log(self.pending.rstrip())
        self.pending = ""


def _lock(tag: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(tag, threading.Lock())
