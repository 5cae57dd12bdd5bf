"""The toolbox image, ``openale/toolbox:bookworm``: the base plus Python, git, tmux, a
compiler and the small tools agents reach for, built from
``dockerfiles/toolbox/Dockerfile`` through the one ``ImageBuilder``."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import docker

from openale.sandbox.images.builder import BuildContext, ImageBuilder
from openale.sandbox.images.names import BASE_IMAGE, TOOLBOX_IMAGE, ImageBuildError, find_image
from openale.sandbox.images.progress import Progress, one_line, quiet, step
from openale.sandbox.settings import SandboxSettings

# The Dockerfile's digest goes on the image, so a warm machine notices when
# the recipe changed and rebuilds without --force.
RECIPE_LABEL = "openale.recipe"
BUILD_TIMEOUT_S = 3600


def build_toolbox(
    settings: SandboxSettings | None = None, *, progress: Progress | None = None
) -> str:
    """Build ``openale/toolbox:bookworm`` on the base image; returns its id."""
    settings = settings or SandboxSettings()
    say = progress or quiet
    builder = ImageBuilder(settings)
    if builder.image_id(BASE_IMAGE) is None:
        raise ImageBuildError(f"{BASE_IMAGE} is missing: build it first (ale images bootstrap)")

    def show_steps(line: str) -> None:
        if line.startswith("Step "):
            say(one_line(line))

    with step(say, f"docker build {TOOLBOX_IMAGE}"):
        built = builder.build(
            BuildContext(_recipe_folder()),
            TOOLBOX_IMAGE,
            labels={RECIPE_LABEL: _recipe_digest()},
            timeout_s=BUILD_TIMEOUT_S,
            log=show_steps,
        )
    return built.image_id


def recipe_changed(client: docker.DockerClient) -> bool:
    """True when the toolbox on the engine was built from another Dockerfile."""
    image = find_image(client, TOOLBOX_IMAGE)
    built_from = (image.labels or {}).get(RECIPE_LABEL) if image else None
    return built_from != _recipe_digest()


def _recipe_folder() -> Path:
    return Path(str(resources.files("openale.sandbox").joinpath("dockerfiles/toolbox")))


def _recipe_digest() -> str:
    return hashlib.sha256((_recipe_folder() / "Dockerfile").read_bytes()).hexdigest()[:16]
