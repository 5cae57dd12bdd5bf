"""``bootstrap``: the base and toolbox images where missing, then the aliases."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

import docker
import docker.errors

from openale.sandbox.engine import docker_client
from openale.sandbox.images.aliases import apply_aliases
from openale.sandbox.images.base import build_debian_base
from openale.sandbox.images.names import (
    BASE_IMAGE,
    TOOLBOX_IMAGE,
    find_image,
    find_image_id,
    short_id,
)
from openale.sandbox.images.progress import Progress, quiet
from openale.sandbox.images.toolbox import build_toolbox, recipe_changed
from openale.sandbox.settings import SandboxSettings


def bootstrap(
    settings: SandboxSettings | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    """Build the base and toolbox images where missing (all of them with ``force``),
    then tag the aliases. Returns the tags now in place: base, toolbox, aliases.

    Safe to run from several processes at once: a lock in ``settings.home``
    makes the others wait and then find the images built.
    """
    settings = settings or SandboxSettings()
    say = progress or quiet
    client = docker_client(settings)
    with _bootstrap_lock(settings):
        replaced = []
        for tag, build in ((BASE_IMAGE, build_debian_base), (TOOLBOX_IMAGE, build_toolbox)):
            old = find_image_id(client, tag)
            stale = tag == TOOLBOX_IMAGE and recipe_changed(client)
            if old and not force and not stale:
                say(f"{tag}: present ({short_id(old)})")
                continue
            build(settings, progress=progress)
            if old and old != find_image_id(client, tag):
                replaced.append(old)
        aliases = apply_aliases(settings, progress=progress)
        # Children before parents: the old toolbox was built on the old base.
        for image_id in reversed(replaced):
            _remove_superseded(client, image_id, say)
    return [BASE_IMAGE, TOOLBOX_IMAGE, *aliases]


def ensure_images(
    settings: SandboxSettings | None = None, progress: Progress | None = None
) -> list[str]:
    """Make sure the base and toolbox images and the aliases exist.

    Cheap when they do (a few engine calls, no build), so the sandbox layer
    can call it before starting from a default or aliased image.
    """
    return bootstrap(settings, force=False, progress=progress)


def _remove_superseded(client: docker.DockerClient, image_id: str, say: Progress) -> None:
    image = find_image(client, image_id)
    if image is None or image.tags:
        return
    try:
        client.images.remove(image_id, noprune=False)
        say(f"removed superseded image {short_id(image_id)}")
    except docker.errors.APIError as e:
        say(f"kept superseded image {short_id(image_id)}: {e.explanation or e}")


@contextlib.contextmanager
def _bootstrap_lock(settings: SandboxSettings) -> Iterator[None]:
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / "images.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
