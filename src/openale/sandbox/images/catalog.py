"""``list_images``: openale's images on the engine, each with its kind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from openale.sandbox.engine import docker_client
from openale.sandbox.images.names import BASE_IMAGE, TOOLBOX_IMAGE, full_name, split_image_ref
from openale.sandbox.runtime import SNAPSHOT_REPOSITORY
from openale.sandbox.settings import SandboxSettings

ImageKind = Literal["base", "toolbox", "alias", "snapshot", "env"]


class ImageInfo(BaseModel):
    """One tag of an openale image on the engine."""

    tag: str
    id: str
    size_bytes: int
    created: datetime
    kind: ImageKind
    alias_of: str | None = None


def list_images(settings: SandboxSettings | None = None) -> list[ImageInfo]:
    """openale's images on the engine: base, toolbox, aliases, snapshots and environments."""
    settings = settings or SandboxSettings()
    client = docker_client(settings)
    summaries = client.api.images()
    # The engine lists `name:latest` for a name given without a tag.
    aliases = {full_name(k): full_name(v) for k, v in settings.image_aliases.items()}
    ids_by_tag = {t: s["Id"] for s in summaries for t in s.get("RepoTags") or []}
    infos = []
    for summary in summaries:
        for tag in summary.get("RepoTags") or []:
            kind, alias_of = _kind(tag, summary, aliases, ids_by_tag)
            if kind is None:
                continue
            infos.append(
                ImageInfo(
                    tag=tag,
                    id=summary["Id"],
                    size_bytes=summary.get("Size", 0),
                    created=datetime.fromtimestamp(summary.get("Created", 0), UTC),
                    kind=kind,
                    alias_of=alias_of,
                )
            )
    order = {"base": 0, "toolbox": 1, "alias": 2, "env": 3, "snapshot": 4}
    return sorted(infos, key=lambda i: (order[i.kind], i.tag))


def _kind(
    tag: str, summary: dict, aliases: dict[str, str], ids_by_tag: dict[str, str]
) -> tuple[ImageKind | None, str | None]:
    if tag == BASE_IMAGE:
        return "base", None
    if tag == TOOLBOX_IMAGE:
        return "toolbox", None
    repository, _ = split_image_ref(tag)
    if repository == SNAPSHOT_REPOSITORY:
        return "snapshot", None
    target = aliases.get(tag)
    if target is not None and ids_by_tag.get(target) == summary["Id"]:
        return "alias", target
    if repository.startswith("openale/"):
        return "env", None
    return None, None
