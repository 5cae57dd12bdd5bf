"""EnvHub: named, versioned environments, built and kept without a registry.

An environment is ``name@version`` of one owner, made either from a Dockerfile
folder or from an image already on the engine. Building it makes the local
image ``openale/env/<owner>/<name>:<version>``; a sandbox starts from it with
``SandboxSpec(image="env:name@version")`` (embedded, owner ``local``) or with
``{"env": "name@version"}`` through the control plane.

- A Dockerfile folder is copied into the hub when it is registered, so a
  version cannot change under the sandboxes that use it; a new Dockerfile is
  a new version.
- The digest covers every file of the folder (path, mode, bytes) and the
  engine ids of the ``FROM`` images. A build whose digest matches the one the
  image was built from is a no-op, so a rebuilt base image is the only thing
  that rebuilds an unchanged version.
- Builds never pull: a ``FROM`` image must be on the engine (the alias table
  maps well-known names onto the bootstrapped images, which already trust
  the host's extra CA certificates).
- Deleting an environment that a sandbox (running or stopped) was started
  from is refused unless forced; forcing only untags, so those sandboxes
  keep working.

Records live in one table of a SQLAlchemy database, by default
``sqlite:///$ALE_HOME/envhub.db``; the control plane can pass its own engine.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import docker.errors
import sqlalchemy as sa
from pydantic import BaseModel

from openale.sandbox.engine import LABEL, docker_client
from openale.sandbox.errors import SandboxError
from openale.sandbox.images import apply_aliases, split_image_ref
from openale.sandbox.settings import SandboxSettings
from openale.sandbox.spec import SandboxSpec

LOCAL_OWNER = "local"
ENV_PREFIX = "env:"
ENV_REPOSITORY = "openale/env"
DIGEST_LABEL = "openale.envhub.digest"
REF_LABEL = "openale.envhub.ref"
MAX_CONTEXT_BYTES = 256 << 20
LOG_KEEP_LINES = 2000
_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_VERSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE | re.MULTILINE)
_STAGE = re.compile(r"^\s*FROM\s+.*?\bAS\s+(\S+)", re.IGNORECASE | re.MULTILINE)

EnvStatus = Literal["registered", "building", "ready", "failed"]
LogSink = Callable[[str], None]


# --- errors ----------------------------------------------------------------------


class EnvHubError(SandboxError):
    """Base class of EnvHub errors; ``status_code`` is the HTTP status the server answers."""


class InvalidEnvError(EnvHubError, ValueError):
    """A bad name, version, reference or Dockerfile folder."""

    status_code = 400


class EnvNotFoundError(EnvHubError):
    """No such ``name@version`` for this owner (another owner's env is never revealed)."""

    status_code = 404


class EnvExistsError(EnvHubError):
    """``name@version`` is already registered by this owner."""

    status_code = 409


class EnvStateError(EnvHubError):
    """The environment is in the wrong state: not built yet, building, or in use."""

    status_code = 409


class EnvBuildError(EnvHubError):
    """The image could not be built; ``log`` holds the build log."""

    status_code = 400

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


# --- records -----------------------------------------------------------------------


class Env(BaseModel):
    """One registered environment, as the library, the CLI and the REST API show it."""

    name: str
    version: str
    owner: str
    image: str
    digest: str | None = None
    status: EnvStatus
    source: Literal["context", "image"]
    source_image: str | None = None
    created_at: datetime
    built_at: datetime | None = None
    error: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


metadata = sa.MetaData()
envs_table = sa.Table(
    "envhub_envs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("image", sa.String(400), nullable=False),
    sa.Column("digest", sa.String(64)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("source_image", sa.String(400)),
    sa.Column("context_dir", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("built_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.Column("log", sa.Text),
    sa.UniqueConstraint("owner", "name", "version", name="uq_envhub_owner_name_version"),
)


@functools.lru_cache(maxsize=8)
def _engine_for(url: str) -> sa.Engine:
    # SQLite waits for a writer instead of failing at once; tables are made once per URL.
    args = {"timeout": 30} if url.startswith("sqlite") else {}
    engine = sa.create_engine(url, connect_args=args)
    metadata.create_all(engine)
    return engine


def default_url(settings: SandboxSettings) -> str:
    if settings.envhub_url:
        return settings.envhub_url
    settings.home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.home / 'envhub.db'}"


def parse_ref(ref: str) -> tuple[str, str]:
    """``"name@version"`` (or ``"env:name@version"``) -> ``(name, version)``, validated."""
    name, sep, version = ref.removeprefix(ENV_PREFIX).partition("@")
    if not sep:
        raise InvalidEnvError(f"environment reference {ref!r} must look like 'name@version'")
    _validate(name, version)
    return name, version


def image_tag(owner: str, name: str, version: str) -> str:
    """The local image of an environment: ``openale/env/<owner>/<name>:<version>``."""
    component = re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")
    if component != owner:
        # Two owners must never share a tag, whatever their names fold to.
        component = f"{component or 'owner'}-{hashlib.sha256(owner.encode()).hexdigest()[:8]}"
    return f"{ENV_REPOSITORY}/{component}/{name}:{version}"


def resolve_env(ref: str, owner: str = LOCAL_OWNER, settings: SandboxSettings | None = None) -> str:
    """The image to start for ``name@version`` of ``owner``; the env must be built (ready)."""
    return EnvHub(settings=settings).resolve(ref, owner=owner)


# --- the hub -------------------------------------------------------------------------


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
        if engine is not None:
            metadata.create_all(engine)
            self.engine = engine
        else:
            self.engine = _engine_for(url or default_url(self.settings))
        self.contexts = self.settings.home / "envhub" / "contexts"
        self.build_timeout_s = build_timeout_s

    @functools.cached_property
    def client(self) -> docker.DockerClient:
        return docker_client(self.settings)

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
        _validate(name, version)
        if (context is None) == (image is None):
            raise InvalidEnvError("register either a Dockerfile folder or an image, not both")
        if context is not None:
            folder = Path(context).expanduser()
            if not (folder / "Dockerfile").is_file():
                raise InvalidEnvError(f"{folder} has no Dockerfile")
            return self._register_context(name, version, owner, lambda dst: _copy(folder, dst))
        return self._register_image(name, version, owner, image)

    def register_archive(
        self, name: str, version: str, archive: bytes, *, owner: str = LOCAL_OWNER
    ) -> Env:
        """Register a Dockerfile folder sent as a (gzipped) tar, as the REST API receives it."""
        _validate(name, version)
        return self._register_context(name, version, owner, lambda dst: _extract(archive, dst))

    def _register_context(self, name, version, owner, fill: Callable[[Path], None]) -> Env:
        self._ensure_new(owner, name, version)
        self.contexts.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-{version}-", dir=self.contexts))
        try:
            fill(folder)
            if not (folder / "Dockerfile").is_file():
                raise InvalidEnvError("the Dockerfile folder has no Dockerfile at its top")
            digest = self._digest(folder)
            return self._insert(
                owner,
                name,
                version,
                status="registered",
                source="context",
                context_dir=str(folder),
                digest=digest,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _register_image(self, name, version, owner, image: str) -> Env:
        self._ensure_new(owner, name, version)
        tag = image_tag(owner, name, version)
        source_id = self._source_id(image)
        self._tag(source_id, tag)
        try:
            return self._insert(
                owner,
                name,
                version,
                status="ready",
                source="image",
                source_image=image,
                digest=_short(source_id),
                built_at=_now(),
            )
        except BaseException:
            self._untag(tag, force=True)
            raise

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
        row = self._row(owner, name, version)
        lines: list[str] = []

        def log(line: str) -> None:
            lines.append(line)
            say(line)

        if row["source"] == "image":
            digest = self._current_image_digest(row)
            if digest is None and self._image_id(row["image"]):
                log(f"{row['source_image']} is gone; {row['image']} keeps the last copy")
                return self.get(name, version, owner=owner)
        else:
            apply_aliases(self.settings)
            digest = self._digest(Path(row["context_dir"]))
        if not force and row["status"] == "ready" and self._built_digest(row) == digest:
            log(f"{row['image']} is up to date (digest {digest})")
            return self.get(name, version, owner=owner)
        self._claim(row)
        try:
            if row["source"] == "image":
                self._tag(self._source_id(row["source_image"]), row["image"])
                log(f"tagged {row['source_image']} as {row['image']}")
            else:
                self._docker_build(row, digest, force, log)
        except BaseException as e:
            # Failed or interrupted: the record never stays `building`.
            error = str(e) or type(e).__name__
            self._update(row["id"], status="failed", error=error, log=_keep(lines), digest=digest)
            if isinstance(e, EnvBuildError):
                e.log = _keep(lines)
            raise
        self._update(
            row["id"], status="ready", error=None, log=_keep(lines), digest=digest, built_at=_now()
        )
        return self.get(name, version, owner=owner)

    def _docker_build(self, row, digest: str, force: bool, log: LogSink) -> None:
        folder = Path(row["context_dir"])
        for base in _from_images((folder / "Dockerfile").read_text(errors="replace")):
            if self._image_id(base) is None:
                raise EnvBuildError(
                    f"FROM {base}: the image is not on the engine and no registry is used; "
                    "run `ale images bootstrap` or build it first"
                )
        old_id = self._image_id(row["image"])
        error = None
        try:
            stream = self.client.api.build(
                fileobj=_context_tar(folder),
                custom_context=True,
                tag=row["image"],
                rm=True,
                forcerm=True,
                pull=False,
                nocache=force,
                decode=True,
                labels={DIGEST_LABEL: digest, REF_LABEL: f"{row['owner']}/{row['name']}"},
                timeout=self.build_timeout_s,
            )
            for chunk in stream:
                for line in (chunk.get("stream") or chunk.get("status") or "").splitlines():
                    if line.strip():
                        log(line.rstrip())
                if "error" in chunk:
                    error = chunk["error"].strip()
                    log(error)
        except docker.errors.APIError as e:
            error = str(e.explanation or e)
        except (docker.errors.DockerException, OSError) as e:
            error = f"{type(e).__name__}: {e}"  # a read timeout of the build stream lands here
        new_id = self._image_id(row["image"]) if error is None else None
        if error is None and new_id is None:
            error = "the engine finished without producing the image"
        if error is not None:
            raise EnvBuildError(f"docker build of {row['image']} failed: {error}")
        if old_id and old_id != new_id:
            self._drop_superseded(old_id)

    # -- queries --------------------------------------------------------------------

    def get(self, name: str, version: str, *, owner: str = LOCAL_OWNER) -> Env:
        return _env(self._row(owner, name, version))

    def list(self, *, owner: str | None = LOCAL_OWNER) -> list[Env]:
        """The owner's environments by name and version; ``owner=None`` lists everyone's."""
        query = sa.select(envs_table).order_by(envs_table.c.name, envs_table.c.version)
        if owner is not None:
            query = query.where(envs_table.c.owner == owner)
        with self.engine.connect() as conn:
            return [_env(dict(r._mapping)) for r in conn.execute(query)]

    def build_log(self, name: str, version: str, *, owner: str = LOCAL_OWNER) -> str:
        """The log of the last build (its last ``LOG_KEEP_LINES`` lines)."""
        return self._row(owner, name, version)["log"] or ""

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
        row = self._row(owner, name, version)
        if row["status"] == "building" and not self._stale(row):
            raise EnvStateError(f"{name}@{version} is building; delete it when the build ends")
        users = self._sandboxes_using(row["image"])
        if users and not force:
            raise EnvStateError(
                f"{name}@{version} is used by sandbox(es) {', '.join(users)}; "
                "remove them first or delete with force"
            )
        self._untag(row["image"], force=force)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(envs_table).where(envs_table.c.id == row["id"]))
        if row["context_dir"]:
            shutil.rmtree(row["context_dir"], ignore_errors=True)

    # -- internals ------------------------------------------------------------------

    def _row(self, owner: str, name: str, version: str) -> dict[str, Any]:
        _validate(name, version)
        t = envs_table.c
        query = sa.select(envs_table).where(t.owner == owner, t.name == name, t.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise EnvNotFoundError(f"no environment {name}@{version}")
        return dict(row._mapping)

    def _ensure_new(self, owner: str, name: str, version: str) -> None:
        try:
            self._row(owner, name, version)
        except EnvNotFoundError:
            return
        raise EnvExistsError(
            f"{name}@{version} is already registered; delete it or register a new version"
        )

    def _insert(self, owner: str, name: str, version: str, **values: Any) -> Env:
        now = _now()
        values = {"created_at": now, "updated_at": now, **values}
        values["image"] = image_tag(owner, name, version)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(envs_table).values(owner=owner, name=name, version=version, **values)
                )
        except sa.exc.IntegrityError:
            # Lost a race with another registration of the same name@version.
            raise EnvExistsError(f"{name}@{version} is already registered") from None
        return self.get(name, version, owner=owner)

    def _update(self, row_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(envs_table)
                .where(envs_table.c.id == row_id)
                .values(updated_at=_now(), **values)
            )

    def _claim(self, row: dict[str, Any]) -> None:
        """Mark the env ``building``, atomically: two builds of one env never overlap."""
        t = envs_table.c
        stale_before = _now() - timedelta(seconds=self.build_timeout_s + 60)
        with self.engine.begin() as conn:
            claimed = conn.execute(
                sa.update(envs_table)
                .where(t.id == row["id"])
                .where(sa.or_(t.status != "building", t.updated_at < stale_before))
                .values(status="building", updated_at=_now(), error=None)
            ).rowcount
        if not claimed:
            raise EnvStateError(f"{row['name']}@{row['version']} is already building")

    def _stale(self, row: dict[str, Any]) -> bool:
        updated = _aware(row["updated_at"])
        return updated < _now() - timedelta(seconds=self.build_timeout_s + 60)

    def _digest(self, folder: Path) -> str:
        h = hashlib.sha256()
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix().encode()
            if path.is_symlink():
                h.update(b"L" + rel + b"\0" + str(path.readlink()).encode() + b"\0")
            elif path.is_file():
                h.update(b"F" + rel + b"\0" + oct(path.stat().st_mode & 0o777).encode() + b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
        for base in _from_images((folder / "Dockerfile").read_text(errors="replace")):
            h.update(b"B" + base.encode() + b"=" + (self._image_id(base) or "missing").encode())
        return h.hexdigest()[:16]

    def _built_digest(self, row: dict[str, Any]) -> str | None:
        """The digest the env's image was made from, read from the image itself."""
        try:
            info = self.client.api.inspect_image(row["image"])
        except docker.errors.ImageNotFound:
            return None
        if row["source"] == "image":
            return _short(info["Id"])
        return (info["Config"].get("Labels") or {}).get(DIGEST_LABEL)

    def _current_image_digest(self, row: dict[str, Any]) -> str | None:
        source = self._image_id(row["source_image"])
        return _short(source) if source else None

    def _source_id(self, image: str) -> str:
        image_id = self._image_id(image)
        if image_id is None:
            target = self.settings.image_aliases.get(image)
            image_id = self._image_id(target) if target else None
        if image_id is None:
            raise InvalidEnvError(
                f"image {image!r} is not on the engine and no registry is used; "
                "build it or run `ale images bootstrap`"
            )
        return image_id

    def _image_id(self, image: str) -> str | None:
        try:
            return self.client.api.inspect_image(image)["Id"]
        except docker.errors.ImageNotFound:
            return None

    def _tag(self, image_id: str, tag: str) -> None:
        repository, version = split_image_ref(tag)
        try:
            self.client.api.tag(image_id, repository, version, force=True)
        except docker.errors.APIError as e:
            raise EnvHubError(f"cannot tag {tag}: {e.explanation or e}") from None

    def _untag(self, tag: str, *, force: bool) -> None:
        try:
            self.client.api.remove_image(tag, force=force)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as e:
            raise EnvHubError(f"cannot remove image {tag}: {e.explanation or e}") from None

    def _sandboxes_using(self, tag: str) -> list[str]:
        containers = self.client.api.containers(all=True, filters={"label": LABEL})
        return sorted(c["Labels"][LABEL] for c in containers if c.get("Image") == tag)

    def _drop_superseded(self, image_id: str) -> None:
        # The previous build of this version, now untagged; the engine keeps it
        # (and says so) while a container still uses it.
        try:
            if not self.client.api.inspect_image(image_id).get("RepoTags"):
                self.client.api.remove_image(image_id)
        except docker.errors.APIError:
            pass


# --- helpers ---------------------------------------------------------------------


def _validate(name: str, version: str) -> None:
    if not _NAME.match(name) or len(name) > 64:
        raise InvalidEnvError(
            f"environment name {name!r}: use lowercase letters, digits and . _ - (at most 64)"
        )
    if not _VERSION.match(version):
        raise InvalidEnvError(
            f"version {version!r}: use letters, digits and . _ - (at most 64, not starting . -)"
        )


def _from_images(dockerfile: str) -> list[str]:
    """Images named in ``FROM`` lines, minus earlier build stages, ``scratch`` and ARG names."""
    stages = {s.lower() for s in _STAGE.findall(dockerfile)}
    return [
        m
        for m in _FROM.findall(dockerfile)
        if m.lower() not in stages and m != "scratch" and "$" not in m
    ]


def _copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)


def _extract(archive: bytes, dst: Path) -> None:
    """Unpack an uploaded tar(.gz); the ``data`` filter refuses links out, devices, abs paths."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            size = sum(m.size for m in tar.getmembers())
            if size > MAX_CONTEXT_BYTES:
                raise InvalidEnvError(f"the Dockerfile folder is {size} bytes, over the cap")
            tar.extractall(dst, filter="data")
    except (tarfile.TarError, EOFError) as e:
        raise InvalidEnvError(f"the context is not a valid tar archive: {e}") from None


def _context_tar(folder: Path) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    buf.seek(0)
    return buf


def _keep(lines: list[str]) -> str:
    return "\n".join(lines[-LOG_KEEP_LINES:])


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:16]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without their zone; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _env(row: dict[str, Any]) -> Env:
    return Env(
        name=row["name"],
        version=row["version"],
        owner=row["owner"],
        image=row["image"],
        digest=row["digest"],
        status=row["status"],
        source=row["source"],
        source_image=row["source_image"],
        created_at=_aware(row["created_at"]),
        built_at=_aware(row["built_at"]),
        error=row["error"],
    )
