"""What openale calls its images, the labels it puts on them, and finding them by name.

Images are told apart by name, not by the ``openale.sandbox`` label: image
labels are copied into every container started from the image, and that label
marks the containers openale manages.
"""

from __future__ import annotations

import docker
import docker.errors
from docker.models.images import Image

from openale.sandbox.errors import SandboxError
from openale.sandbox.settings import DEFAULT_IMAGE

SUITE = "bookworm"
BASE_IMAGE = f"openale/debian:{SUITE}"
TOOLBOX_IMAGE = DEFAULT_IMAGE
# Task environments are `openale/env/<task>:<digest>`, EnvHub's are
# `openale/env/<owner>/<name>:<version>`.
ENV_REPOSITORY = "openale/env"
# Set on base and toolbox (and inherited by images built on them); an alias
# only ever moves an existing name that carries it, never an upstream image.
IMAGE_LABEL = "openale.image"
# The build-context digest an image was built from (see ``builder``).
DIGEST_LABEL = "openale.envhub.digest"


class ImageBuildError(SandboxError):
    """An image could not be built, imported or tagged.

    ``reason`` is what went wrong, ``log`` the build log when there is one;
    the message is the reason followed by the log's last lines.
    """

    status_code = 500
    LOG_TAIL_LINES = 40

    def __init__(self, reason: str, log: str = ""):
        self.reason, self.log = reason, log
        tail = "\n".join(line.rstrip() for line in log.splitlines()[-self.LOG_TAIL_LINES :])
        super().__init__(f"{reason}\n{tail}" if tail else reason)


def split_image_ref(name: str) -> tuple[str, str]:
    """``repo[:tag]`` -> (repository, tag); the tag is after the last ':' past the last '/'.

    >>> split_image_ref("ghcr.io/laude-institute/t-bench/ubuntu-24-04:20250624")
    ('ghcr.io/laude-institute/t-bench/ubuntu-24-04', '20250624')
    >>> split_image_ref("localhost:5000/tools")
    ('localhost:5000/tools', 'latest')
    """
    if "@" in name:
        raise ImageBuildError(f"{name}: a digest reference cannot be tagged locally; use a tag")
    repository, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, "latest"
    return repository, tag


def full_name(name: str) -> str:
    """``name`` with its tag spelled out, as the engine lists it: ``python:latest``."""
    return ":".join(split_image_ref(name))


def find_image(client: docker.DockerClient, name: str) -> Image | None:
    """The local image called ``name`` (a tag or an id), or None; nothing is pulled."""
    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


def find_image_id(client: docker.DockerClient, name: str) -> str | None:
    image = find_image(client, name)
    return image.id if image is not None else None


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]
