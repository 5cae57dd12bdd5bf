"""Images without a registry: the base and toolbox images, aliases, and every build.

Where Docker Hub cannot be reached, ``bootstrap`` makes the images openale
needs from Debian packages alone:

- ``openale/debian:bookworm`` (``base``): a debootstrap root file system that
  trusts the extra CA certificates of the settings, brought in with
  ``docker import``;
- ``openale/toolbox:bookworm`` (``toolbox``): that base plus the tools agents
  reach for;
- aliases (``aliases``): names task Dockerfiles start ``FROM`` tagged onto
  those images, so builds find them locally instead of pulling.

Every ``docker build`` (toolbox, EnvHub environments, task environments) goes
through ``builder.ImageBuilder``: one build-context digest, one ``FROM``
parser (``dockerfile``), one build loop. ``list_images`` (``catalog``) shows
what is on the engine.
"""

from openale.sandbox.images.aliases import apply_aliases
from openale.sandbox.images.base import build_debian_base
from openale.sandbox.images.bootstrap import bootstrap, ensure_images
from openale.sandbox.images.builder import BuildContext, Built, ImageBuilder
from openale.sandbox.images.catalog import ImageInfo, ImageKind, list_images
from openale.sandbox.images.certs import split_pem_certificates
from openale.sandbox.images.dockerfile import from_images
from openale.sandbox.images.names import (
    BASE_IMAGE,
    DIGEST_LABEL,
    ENV_REPOSITORY,
    TOOLBOX_IMAGE,
    ImageBuildError,
    split_image_ref,
)
from openale.sandbox.images.toolbox import build_toolbox

__all__ = [
    "BASE_IMAGE",
    "DIGEST_LABEL",
    "ENV_REPOSITORY",
    "TOOLBOX_IMAGE",
    "BuildContext",
    "Built",
    "ImageBuildError",
    "ImageBuilder",
    "ImageInfo",
    "ImageKind",
    "apply_aliases",
    "bootstrap",
    "build_debian_base",
    "build_toolbox",
    "ensure_images",
    "from_images",
    "list_images",
    "split_image_ref",
    "split_pem_certificates",
]
