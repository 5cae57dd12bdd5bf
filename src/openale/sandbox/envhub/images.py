"""EnvHub's engine side: the one ``ImageBuilder`` plus the tags and folders of environments."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import docker.errors

from openale.sandbox.engine import LABEL
from openale.sandbox.envhub.model import EnvHubError, InvalidEnvError
from openale.sandbox.images.builder import ImageBuilder
from openale.sandbox.images.names import split_image_ref

REF_LABEL = "openale.envhub.ref"
MAX_CONTEXT_BYTES = 256 << 20


class EnvImages(ImageBuilder):
    """Builds environments as every image is built, and tags, untags and finds their users."""

    def source_id(self, image: str) -> str:
        """The id of a local image or of its alias target; nothing is pulled."""
        image_id = self.image_id(image)
        if image_id is None and image in self.settings.image_aliases:
            image_id = self.image_id(self.settings.image_aliases[image])
        if image_id is None:
            raise InvalidEnvError(
                f"image {image!r} is not on the engine and no registry is used; "
                "build it or run `ale images bootstrap`"
            )
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
