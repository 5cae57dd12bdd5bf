"""EnvHub: named, versioned environments, built and kept without a registry.

An environment is ``name@version`` of one owner, made either from a Dockerfile
folder or from an image already on the engine. Building it makes the local
image ``openale/env/<owner>/<name>:<version>``; a sandbox starts from it with
``SandboxSpec(image="env:name@version")`` (embedded, owner ``local``) or with
``{"env": "name@version"}`` through the control plane.

- A Dockerfile folder is copied into the hub when it is registered, so a
  version cannot change under the sandboxes that use it; a new Dockerfile is
  a new version.
- Builds go through the one ``ImageBuilder`` (``openale.sandbox.images``)
  that task environments and the toolbox use too. Its digest covers every
  file of the folder (path, mode, bytes) and the engine ids of the ``FROM``
  images. A build whose digest matches the one the
  image was built from is a no-op, so a rebuilt base image is the only thing
  that rebuilds an unchanged version.
- Builds never pull: a ``FROM`` image must be on the engine (the alias table
  maps well-known names onto the bootstrapped images, which already trust
  the host's extra CA certificates).
- Deleting an environment that a sandbox (running or stopped) was started
  from is refused unless forced; forcing only untags, so those sandboxes
  keep working.

Records live in one table of a SQLAlchemy database, by default
``sqlite:///$ALE_HOME/envhub.db`` (``ALE_ENVHUB_URL`` to change it); the
control plane passes its own engine.
"""

from openale.sandbox.envhub.hub import LOG_KEEP_LINES, EnvHub, resolve_env
from openale.sandbox.envhub.images import REF_LABEL
from openale.sandbox.envhub.model import (
    ENV_PREFIX,
    LOCAL_OWNER,
    Env,
    EnvBuildError,
    EnvExistsError,
    EnvHubError,
    EnvNotFoundError,
    EnvStateError,
    EnvStatus,
    InvalidEnvError,
    check_image_access,
    image_tag,
    parse_ref,
)

__all__ = [
    "ENV_PREFIX",
    "LOCAL_OWNER",
    "LOG_KEEP_LINES",
    "REF_LABEL",
    "Env",
    "EnvBuildError",
    "EnvExistsError",
    "EnvHub",
    "EnvHubError",
    "EnvNotFoundError",
    "EnvStateError",
    "EnvStatus",
    "InvalidEnvError",
    "check_image_access",
    "image_tag",
    "parse_ref",
    "resolve_env",
]
