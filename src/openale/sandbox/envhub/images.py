"""The engine side of EnvHub: build contexts, digests, builds that never pull, tags."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors

from openale.sandbox.engine import LABEL
from openale.sandbox.envhub.model import EnvBuildError, EnvHubError, InvalidEnvError
from openale.sandbox.images import split_image_ref

DIGEST_LABEL = "openale.envhub.digest"
REF_LABEL = "openale.envhub.ref"
MAX_CONTEXT_BYTES = 256 << 20
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE | re.MULTILINE)
_STAGE = re.compile(r"^\s*FROM\s+.*?\bAS\s+(\S+)", re.IGNORECASE | re.MULTILINE)

LogSink = Callable[[str], None]


class EnvImages:
    """Engine operations on environment images, over one Docker client."""

    def __init__(self, client: docker.DockerClient, aliases: dict[str, str]):
        self.api = client.api
        self.aliases = aliases

    def image_id(self, image: str) -> str | None:
        try:
            return self.api.inspect_image(image)["Id"]
        except docker.errors.ImageNotFound:
            return None

    def labels(self, image: str) -> dict[str, str] | None:
        try:
            return self.api.inspect_image(image)["Config"].get("Labels") or {}
        except docker.errors.ImageNotFound:
            return None

    def source_id(self, image: str) -> str:
        """The id of a local image or of its alias target; nothing is pulled."""
        image_id = self.image_id(image)
        if image_id is None and image in self.aliases:
            image_id = self.image_id(self.aliases[image])
        if image_id is None:
            raise InvalidEnvError(
                f"image {image!r} is not on the engine and no registry is used; "
                "build it or run `ale images bootstrap`"
            )
        return image_id

    def digest(self, folder: Path) -> str:
        """Every file of the folder (path, mode, bytes, link targets) and the FROM images' ids."""
        h = hashlib.sha256()
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix().encode()
            if path.is_symlink():
                h.update(b"L" + rel + b"\0" + str(path.readlink()).encode() + b"\0")
            elif path.is_file():
                h.update(b"F" + rel + b"\0" + oct(path.stat().st_mode & 0o777).encode() + b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
        for base in from_images(folder / "Dockerfile"):
            h.update(b"B" + base.encode() + b"=" + (self.image_id(base) or "missing").encode())
        return h.hexdigest()[:16]

    def build(
        self,
        folder: Path,
        tag: str,
        *,
        labels: dict[str, str],
        nocache: bool,
        timeout_s: int,
        log: LogSink,
    ) -> str:
        """``docker build`` of the folder as ``tag``, every log line to ``log``; the new id.

        ``FROM`` images must be local: the engine would otherwise try a registry.
        """
        for base in from_images(folder / "Dockerfile"):
            if self.image_id(base) is None:
                raise EnvBuildError(
                    f"FROM {base}: the image is not on the engine and no registry is used; "
                    "run `ale images bootstrap` or build it first"
                )
        error = None
        try:
            stream = self.api.build(
                fileobj=context_tar(folder),
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
            lines = _LineSplitter(log)
            for chunk in stream:
                lines.feed(chunk.get("stream") or chunk.get("status") or "")
                if "error" in chunk:
                    lines.flush()
                    error = chunk["error"].strip()
                    log(error)
            lines.flush()
        except docker.errors.APIError as e:
            error = str(e.explanation or e)
        except (docker.errors.DockerException, OSError) as e:
            error = f"{type(e).__name__}: {e}"  # a read timeout of the build stream lands here
        image_id = self.image_id(tag) if error is None else None
        if error is None and image_id is None:
            error = "the engine finished without producing the image"
        if error is not None:
            raise EnvBuildError(f"docker build of {tag} failed: {error}")
        return image_id

    def tag(self, image_id: str, tag: str) -> None:
        repository, version = split_image_ref(tag)
        try:
            self.api.tag(image_id, repository, version, force=True)
        except docker.errors.APIError as e:
            raise EnvHubError(f"cannot tag {tag}: {e.explanation or e}") from None

    def untag(self, tag: str, *, force: bool) -> None:
        """Remove the tag; the image goes with it when nothing else holds it."""
        try:
            self.api.remove_image(tag, force=force)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as e:
            raise EnvHubError(f"cannot remove image {tag}: {e.explanation or e}") from None

    def drop_superseded(self, image_id: str) -> None:
        # The previous build of a version, now untagged; the engine refuses (and
        # we keep it) while a container still uses it.
        try:
            if not self.api.inspect_image(image_id).get("RepoTags"):
                self.api.remove_image(image_id)
        except docker.errors.APIError:
            pass

    def sandboxes_using(self, tag: str) -> list[str]:
        """Ids of openale sandboxes, running or stopped, started from ``tag``."""
        containers = self.api.containers(all=True, filters={"label": LABEL})
        return sorted(c["Labels"][LABEL] for c in containers if c.get("Image") == tag)


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


def from_images(dockerfile: Path) -> list[str]:
    """Images named in ``FROM`` lines, minus earlier build stages, ``scratch`` and ARG names."""
    text = dockerfile.read_text(errors="replace")
    stages = {s.lower() for s in _STAGE.findall(text)}
    return [
        m
        for m in _FROM.findall(text)
        if m.lower() not in stages and m != "scratch" and "$" not in m
    ]


def copy_folder(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)


def extract_archive(archive: bytes, dst: Path) -> None:
    """Unpack an uploaded tar(.gz); the ``data`` filter refuses links out, devices, abs paths."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            size = sum(m.size for m in tar.getmembers())
            if size > MAX_CONTEXT_BYTES:
                raise InvalidEnvError(
                    f"the Dockerfile folder holds {size} bytes, over the {MAX_CONTEXT_BYTES} cap"
                )
            tar.extractall(dst, filter="data")
    except (tarfile.TarError, EOFError) as e:
        raise InvalidEnvError(f"the context is not a valid tar archive: {e}") from None


def context_tar(folder: Path) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    buf.seek(0)
    return buf
