"""Aliases: names task Dockerfiles start ``FROM`` (``ubuntu:24.04``, ``python:3.12-slim``,
the Terminal-Bench bases) tagged onto openale's images, so a build finds them
locally instead of pulling."""

from __future__ import annotations

import docker.errors

from openale.sandbox.engine import docker_client
from openale.sandbox.images.names import (
    IMAGE_LABEL,
    ImageBuildError,
    find_image,
    find_image_id,
    split_image_ref,
)
from openale.sandbox.images.progress import Progress, quiet
from openale.sandbox.settings import SandboxSettings


def apply_aliases(
    settings: SandboxSettings | None = None, *, progress: Progress | None = None
) -> dict[str, str]:
    """Tag every ``settings.image_aliases`` name onto its target where the target exists.

    A name already held by an image that openale did not build (a real
    ``ubuntu:24.04`` pulled on a connected machine) is left alone. Returns the
    aliases that now point at their targets, tagged now or before.
    """
    settings = settings or SandboxSettings()
    say = progress or quiet
    client = docker_client(settings)
    applied: dict[str, str] = {}
    for name, target in settings.image_aliases.items():
        target_id = find_image_id(client, target)
        if target_id is None:
            say(f"alias {name}: target {target} is missing, skipped")
            continue
        current = find_image(client, name)
        if current is not None and current.id != target_id:
            if IMAGE_LABEL not in (current.labels or {}):
                say(f"alias {name}: an image not built by openale holds that name, left alone")
                continue
        if current is None or current.id != target_id:
            repository, tag = split_image_ref(name)
            try:
                client.images.get(target_id).tag(repository, tag)
            except docker.errors.APIError as e:
                raise ImageBuildError(f"cannot tag {target} as {name}: {e}") from None
            say(f"alias {name} -> {target}")
        applied[name] = target
    return applied
