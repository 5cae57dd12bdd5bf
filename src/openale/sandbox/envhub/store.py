"""EnvHub records: one SQLAlchemy table, in its own database or the control plane's."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from openale.sandbox.envhub.model import Env, EnvExistsError, EnvNotFoundError, EnvStateError
from openale.sandbox.settings import SandboxSettings

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
Row = dict[str, Any]


def default_url(settings: SandboxSettings) -> str:
    """``settings.envhub_url`` (``ALE_ENVHUB_URL``), else ``sqlite:///<home>/envhub.db``."""
    if settings.envhub_url:
        return settings.envhub_url
    settings.home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.home / 'envhub.db'}"


@functools.lru_cache(maxsize=8)
def engine_for(url: str) -> sa.Engine:
    # SQLite waits for a writer instead of failing at once; tables are made once per URL.
    args = {"timeout": 30} if url.startswith("sqlite") else {}
    engine = sa.create_engine(url, connect_args=args)
    metadata.create_all(engine)
    return engine


class EnvStore:
    """Row operations on ``envhub_envs``; every lookup is scoped to one owner."""

    def __init__(self, engine: sa.Engine, *, stale_after_s: float):
        metadata.create_all(engine)
        self.engine = engine
        # A `building` record older than this was left by a process that died mid-build.
        self.stale_after = timedelta(seconds=stale_after_s)

    def row(self, owner: str, name: str, version: str) -> Row:
        t = envs_table.c
        query = sa.select(envs_table).where(t.owner == owner, t.name == name, t.version == version)
        with self.engine.connect() as conn:
            found = conn.execute(query).first()
        if found is None:
            raise EnvNotFoundError(f"no environment {name}@{version}")
        return dict(found._mapping)

    def rows(self, owner: str | None) -> list[Row]:
        query = sa.select(envs_table).order_by(envs_table.c.name, envs_table.c.version)
        if owner is not None:
            query = query.where(envs_table.c.owner == owner)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def ensure_new(self, owner: str, name: str, version: str) -> None:
        try:
            self.row(owner, name, version)
        except EnvNotFoundError:
            return
        raise EnvExistsError(
            f"{name}@{version} is already registered; delete it or register a new version"
        )

    def insert(self, owner: str, name: str, version: str, **values: Any) -> Row:
        now = utcnow()
        values = {"created_at": now, "updated_at": now, **values}
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(envs_table).values(owner=owner, name=name, version=version, **values)
                )
        except sa.exc.IntegrityError:
            # Lost a race with another registration of the same name@version.
            raise EnvExistsError(f"{name}@{version} is already registered") from None
        return self.row(owner, name, version)

    def update(self, row_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(envs_table)
                .where(envs_table.c.id == row_id)
                .values(updated_at=utcnow(), **values)
            )

    def delete(self, row_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(envs_table).where(envs_table.c.id == row_id))

    def claim(self, row: Row) -> None:
        """Mark the env ``building``, atomically: two builds of one env never overlap."""
        t = envs_table.c
        with self.engine.begin() as conn:
            claimed = conn.execute(
                sa.update(envs_table)
                .where(t.id == row["id"])
                .where(sa.or_(t.status != "building", t.updated_at < utcnow() - self.stale_after))
                .values(status="building", updated_at=utcnow(), error=None)
            ).rowcount
        if not claimed:
            raise EnvStateError(f"{row['name']}@{row['version']} is already building")

    def building(self, row: Row) -> bool:
        """True while a live build holds the env (not one a dead process left behind)."""
        return row["status"] == "building" and aware(row["updated_at"]) > (
            utcnow() - self.stale_after
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without their zone; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def to_env(row: Row) -> Env:
    return Env(
        name=row["name"],
        version=row["version"],
        owner=row["owner"],
        image=row["image"],
        digest=row["digest"],
        status=row["status"],
        source=row["source"],
        source_image=row["source_image"],
        created_at=aware(row["created_at"]),
        built_at=aware(row["built_at"]),
        error=row["error"],
    )
