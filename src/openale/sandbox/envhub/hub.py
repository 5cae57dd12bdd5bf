"""``EnvHub``: register, build, list, resolve and delete environments."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from openale.sandbox.envhub.images import REF_LABEL, EnvImages, copy_folder, extract_archive
from openale.sandbox.envhub.model import (
    LOCAL_OWNER,
    Env,
    EnvBuildError,
    EnvStateError,
    InvalidEnvError,
    image_tag,
    parse_ref,
    validate,
)
from openale.sandbox.envhub.store import EnvStore, Row, default_url, engine_for, to_env, utcnow
from openale.sandbox.images.builder import BuildContext, LogSink
from openale.sandbox.images.names import DIGEST_LABEL, ImageBuildError
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import SandboxSpec

LOG_KEEP_LINES = 2000


class EnvHub:
    """Register, build, list and delete environments.

    Every method takes the ``owner`` it acts for; the embedded default is
    ``local``. Pass ``engine`` to keep the records in another SQLAlchemy
    database (the control plane's), ``url`` for another database URL.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: sa.Engine | None = None,
        settings: SandboxSettings | None = None,
        build_timeout_s: int = 1800,
    ):
        self.settings = settings or SandboxSettings()
        engine = engine if engine is not None else engine_for(url or default_url(self.settings))
        self.store = EnvStore(engine, stale_after_s=build_timeout_s + 60)
        self.contexts = self.settings.home / "envhub" / "contexts"
        self.build_timeout_s = build_timeout_s

    @functools.cached_property
    def images(self) -> EnvImages:
        return EnvImages(self.settings)

    # -- registration ----------------------------------------------------------------

    def register(
        self,
        name: str,
        version: str,
        *,
        context: str | Path | None = None,
        image: str | None = None,
        owner: str = LOCAL_OWNER,
    ) -> Env:
        """Register a Dockerfile folder (``context``, copied in) or an existing ``image``.

        A folder is recorded as ``registered`` until ``build``; an image is
        tagged as the environment's image at once and is ``ready``.
        """
        validate(name, version)
        if (context is None) == (image is None):
            raise InvalidEnvError("register either a Dockerfile folder or an image, not both")
        if image is not None:
            return self._register_image(name, version, owner, image)
        folder = Path(context).expanduser()
        if not (folder / "Dockerfile").is_file():
            raise InvalidEnvError(f"{folder} has no Dockerfile")
        return self._register_context(name, version, owner, lambda dst: copy_folder(folder, dst))

    def register_archive(
        self, name: str, version: str, archive: bytes, *, owner: str = LOCAL_OWNER
    ) -> Env:
        """Register a Dockerfile folder sent as a (gzipped) tar, as the REST API receives it."""
        validate(name, version)
        return self._register_context(
            name, version, owner, lambda dst: extract_archive(archive, dst)
        )

    def _register_context(self, name, version, owner, fill: Callable[[Path], None]) -> Env:
        self.store.ensure_new(owner, name, version)
        self.contexts.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-{version}-", dir=self.contexts))
        try:
            fill(folder)
            if not (folder / "Dockerfile").is_file():
                raise InvalidEnvError("the Dockerfile folder has no Dockerfile at its top")
            row = self.store.insert(
                owner,
                name,
                version,
                image=image_tag(owner, name, version),
                status="registered",
                source="context",
                context_dir=str(folder),
                digest=self._digest(folder),
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return to_env(row)

    def _register_image(self, name: str, version: str, owner: str, image: str) -> Env:
        self.store.ensure_new(owner, name, version)
        source_id = self.images.source_id(image)
        tag = image_tag(owner, name, version)
        # The record first: a registration that loses a race must not move the winner's tag.
        row = self.store.insert(
            owner, name, version, image=tag, status="building", source="image", source_image=image
        )
        try:
            self.images.tag(source_id, tag)
        except BaseException:
            self.store.delete(row["id"])
            raise
        done = {"digest": _short(source_id), "built_at": utcnow()}
        self.store.update(row["id"], status="ready", **done)
        return to_env(self.store.row(owner, name, version))

    # -- building ---------------------------------------------------------------------

    def build(
        self,
        name: str,
        version: str,
        *,
        owner: str = LOCAL_OWNER,
        force: bool = False,
        on_log: LogSink | None = None,
    ) -> Env:
        """Build the environment's image, sending each build log line to ``on_log``.

        A no-op when the image was built from the same digest (``force``
        rebuilds without the engine's layer cache). A failed build leaves the
        env ``failed`` with the error and the log, and raises ``EnvBuildError``.
        """
        say = on_log or (lambda line: None)
        row = self.store.row(owner, name, version)
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            say(line)

        if row["source"] == "image":
            source_id = self.images.image_id(row["source_image"])
            if source_id is None and self.images.image_id(row["image"]):
                log(f"{row['source_image']} is gone; {row['image']} keeps the last copy")
                return to_env(row)
            digest = _short(source_id) if source_id else None
        else:
            digest = self._digest(Path(row["context_dir"]))
        fresh = digest is not None and self._built_digest(row) == digest
        if not force and row["status"] == "ready" and fresh:
            log(f"{row['image']} is up to date (digest {digest})")
            return to_env(row)
        self.store.claim(row)
        try:
            self._make_image(row, digest, force, log)
        except BaseException as e:
            # Failed or interrupted: the record never stays `building`.
            error = str(e) or type(e).__name__
            self.store.update(
                row["id"], status="failed", error=error, log=_keep(lines), digest=digest
            )
            if isinstance(e, EnvBuildError):
                e.log = _keep(lines)
            raise
        done = {"error": None, "log": _keep(lines), "digest": digest, "built_at": utcnow()}
        self.store.update(row["id"], status="ready", **done)
        return to_env(self.store.row(owner, name, version))

    def _make_image(self, row: Row, digest: str | None, force: bool, log: LogSink) -> None:
        tag = row["image"]
        if row["source"] == "image":
            self.images.tag(self.images.source_id(row["source_image"]), tag)
            log(f"tagged {row['source_image']} as {tag}")
            return
        old_id = self.images.image_id(tag)
        try:
            new_id, _ = self.images.build(
                BuildContext(Path(row["context_dir"])),
                tag,
                digest=digest,
                labels={REF_LABEL: f"{row['owner']}/{row['name']}"},
                nocache=force,
                timeout_s=self.build_timeout_s,
                log=log,
            )
        except ImageBuildError as e:
            raise EnvBuildError(e.reason, e.log) from None
        if old_id and old_id != new_id:
            self.images.drop_superseded(old_id)

    def _digest(self, folder: Path) -> str:
        # Short, as `ale envs` shows it; the same digest task images are tagged by.
        return self.images.digest(BuildContext(folder))[:16]

    def _built_digest(self, row: Row) -> str | None:
        """The digest the env's image was made from, read from the image itself."""
        if row["source"] == "image":
            image_id = self.images.image_id(row["image"])
            return _short(image_id) if image_id else None
        return (self.images.labels(row["image"]) or {}).get(DIGEST_LABEL)

    # -- queries --------------------------------------------------------------------

    def get(self, name: str, version: str, *, owner: str = LOCAL_OWNER) -> Env:
        validate(name, version)
        return to_env(self.store.row(owner, name, version))

    def list(self, *, owner: str | None = LOCAL_OWNER) -> list[Env]:
        """The owner's environments by name and version; ``owner=None`` lists everyone's."""
        return [to_env(row) for row in self.store.rows(owner)]

    def build_log(self, name: str, version: str, *, owner: str = LOCAL_OWNER) -> str:
        """The log of the last build (its last ``LOG_KEEP_LINES`` lines)."""
        validate(name, version)
        return self.store.row(owner, name, version)["log"] or ""

    def resolve(self, ref: str, *, owner: str = LOCAL_OWNER) -> str:
        """``name@version`` -> the image to start; raises unless the env is ready."""
        name, version = parse_ref(ref)
        env = self.get(name, version, owner=owner)
        if env.status != "ready":
            raise EnvStateError(f"{env.ref} is {env.status}, not ready: run `ale envs build` first")
        return env.image

    def sandbox_spec(self, ref: str, *, owner: str = LOCAL_OWNER, **fields: Any) -> SandboxSpec:
        """A ``SandboxSpec`` that starts from the environment (other fields as keywords)."""
        return SandboxSpec.parse(**{**fields, "image": self.resolve(ref, owner=owner)})

    # -- deletion ---------------------------------------------------------------------

    def delete(
        self, name: str, version: str, *, owner: str = LOCAL_OWNER, force: bool = False
    ) -> None:
        """Remove the record, the copied folder and the image tag.

        Refused while a build runs, and while any sandbox (running or stopped)
        was started from the image, unless ``force``: then the tag goes and
        the image itself stays as long as those sandboxes need it.
        """
        validate(name, version)
        row = self.store.row(owner, name, version)
        if self.store.building(row):
            raise EnvStateError(f"{name}@{version} is building; delete it when the build ends")
        users = self.images.sandboxes_using(row["image"])
        if users and not force:
            raise EnvStateError(
                f"{name}@{version} is used by sandbox(es) {', '.join(users)}; "
                "remove them first or delete with force"
            )
        self.images.untag(row["image"], force=force)
        self.store.delete(row["id"])
        if row["context_dir"]:
            shutil.rmtree(row["context_dir"], ignore_errors=True)


def resolve_env(ref: str, owner: str = LOCAL_OWNER, settings: SandboxSettings | None = None) -> str:
    """The image of ``name@version`` in the embedded hub (``settings``' database).

    The control plane resolves through its own hub (``AppState.env_hub()``),
    whose records live in the server's database.
    """
    return EnvHub(settings=settings).resolve(ref, owner=owner)


def _keep(lines: list[str]) -> str:
    return "\n".join(lines[-LOG_KEEP_LINES:])


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:16]
