"""The control plane's tables (SQLAlchemy 2 declarative), and how rows become API models.

Only portable column types: the same tables live in SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openale.sandbox.spec import SandboxInfo, SandboxSpec, Snapshot
from openale.server.schemas import AuditRecord, TokenInfo

ACTIVE_STATES = ("pending", "running")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Base(DeclarativeBase):
    """Declarative base of every control-plane table (EnvHub's included)."""


class MetaRow(Base):
    __tablename__ = "ale_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TokenRow(Base):
    __tablename__ = "ale_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    scopes: Mapped[str] = mapped_column(Text, default="")  # space-separated
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def info(self) -> TokenInfo:
        return TokenInfo(
            id=self.id,
            owner=self.owner,
            scopes=self.scope_list,
            created_at=as_utc(self.created_at),
            revoked=self.revoked,
        )


class SandboxRow(Base):
    __tablename__ = "ale_sandboxes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    spec: Mapped[str] = mapped_column(Text)  # SandboxSpec JSON
    env: Mapped[str | None] = mapped_column(String(256), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_active_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def sandbox_spec(self) -> SandboxSpec:
        return SandboxSpec.model_validate_json(self.spec)

    def info(self) -> SandboxInfo:
        spec = self.sandbox_spec
        return SandboxInfo(
            id=self.id,
            status=self.state,
            image=spec.image,
            created_at=as_utc(self.created_at),
            last_active_at=as_utc(self.last_active_at),
            ttl_s=spec.ttl_s,
            deadline_s=spec.deadline_s,
            detached=True,
            owner=self.owner,
            spec=spec,
        )


class IdempotencyRow(Base):
    __tablename__ = "ale_idempotency"
    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    sandbox_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SnapshotRow(Base):
    __tablename__ = "ale_snapshots"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    image: Mapped[str] = mapped_column(String(256))
    source_sandbox: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    spec: Mapped[str] = mapped_column(Text)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            id=self.id,
            image=self.image,
            source_sandbox=self.source_sandbox,
            created_at=as_utc(self.created_at),
            spec=SandboxSpec.model_validate_json(self.spec),
        )


class AuditRow(Base):
    __tablename__ = "ale_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    token_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(256))
    op: Mapped[str] = mapped_column(String(64))
    sandbox: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    status_code: Mapped[int] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bytes_in: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bytes_out: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")

    def record(self) -> AuditRecord:
        return AuditRecord(
            id=self.id,
            ts=as_utc(self.ts),
            owner=self.owner,
            token_id=self.token_id,
            method=self.method,
            route=self.route,
            op=self.op,
            sandbox=self.sandbox,
            status_code=self.status_code,
            exit_code=self.exit_code,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            duration_s=self.duration_s,
            detail=json.loads(self.detail or "{}"),
        )
