"""The control plane's state: tokens, sandboxes, idempotency keys, snapshots, audit.

SQLAlchemy 2 over SQLite by default or PostgreSQL by URL; the SQL stays
portable (no JSON operators, no dialect-specific upserts). The store is the
truth about who owns what and what state a sandbox is in; the reaper and the
start-up reconciliation keep it in line with the engine. Tables: ``tables.py``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from openale.sandbox.spec import SandboxSpec, Snapshot
from openale.server.schemas import ADMIN_SCOPE, AuditRecord, TokenCreated, TokenInfo
from openale.server.tables import (
    ACTIVE_STATES,
    AuditRow,
    Base,
    IdempotencyRow,
    MetaRow,
    SandboxRow,
    SnapshotRow,
    TokenRow,
    as_utc,
    hash_secret,
    utcnow,
)

__all__ = ["ACTIVE_STATES", "Base", "SandboxRow", "Store", "as_utc", "is_admin"]


class Store:
    """Typed operations over the control-plane database (thread-safe; one per app)."""

    def __init__(self, url: str):
        # A bare postgresql:// URL would pick psycopg2; the driver installed is psycopg 3.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        else:
            kwargs.update(pool_size=20, max_overflow=40)
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # -- identity ---------------------------------------------------------------------

    def server_id(self) -> str:
        """This store's stable id; containers are labelled with it, so a restart adopts them."""
        with self.session() as s:
            row = s.get(MetaRow, "server_id")
            if row is not None:
                return row.value
        try:
            with self.session() as s:
                s.add(MetaRow(key="server_id", value="srv-" + secrets.token_hex(6)))
        except IntegrityError:
            pass  # another process created it at the same moment
        with self.session() as s:
            return s.get(MetaRow, "server_id").value

    # -- tokens -----------------------------------------------------------------------

    def create_token(self, owner: str, scopes: list[str] | None = None) -> TokenCreated:
        secret = "ale_" + secrets.token_urlsafe(32)
        token_id = "tok-" + secrets.token_hex(6)
        scopes = sorted(set(scopes or []))
        with self.session() as s:
            s.add(
                TokenRow(
                    id=token_id,
                    secret_hash=hash_secret(secret),
                    owner=owner,
                    scopes=" ".join(scopes),
                    created_at=utcnow(),
                    revoked=False,
                )
            )
        return TokenCreated(id=token_id, token=secret, owner=owner, scopes=scopes)

    def authenticate(self, secret: str) -> TokenRow | None:
        """The live token with this secret, or None (unknown or revoked)."""
        with self.session() as s:
            row = s.scalar(select(TokenRow).where(TokenRow.secret_hash == hash_secret(secret)))
            if row is None or row.revoked:
                return None
            return row

    def list_tokens(self) -> list[TokenInfo]:
        with self.session() as s:
            return [r.info() for r in s.scalars(select(TokenRow).order_by(TokenRow.created_at))]

    def revoke_token(self, token_id: str) -> bool:
        with self.session() as s:
            res = s.execute(update(TokenRow).where(TokenRow.id == token_id).values(revoked=True))
            return res.rowcount > 0

    # -- sandboxes --------------------------------------------------------------------

    def add_sandbox(self, sandbox_id: str, owner: str, spec: SandboxSpec, env: str | None) -> None:
        created = utcnow()
        deadline = created + timedelta(seconds=spec.deadline_s) if spec.deadline_s else None
        with self.session() as s:
            s.add(
                SandboxRow(
                    id=sandbox_id,
                    owner=owner,
                    spec=spec.model_dump_json(),
                    env=env,
                    state="pending",
                    created_at=created,
                    last_active_at=created,
                    deadline_at=deadline,
                )
            )

    def get_sandbox(self, sandbox_id: str) -> SandboxRow | None:
        with self.session() as s:
            return s.get(SandboxRow, sandbox_id)

    def list_sandboxes(
        self, owner: str | None = None, states: tuple[str, ...] | None = None
    ) -> list[SandboxRow]:
        q = select(SandboxRow).order_by(SandboxRow.created_at)
        if owner is not None:
            q = q.where(SandboxRow.owner == owner)
        if states is not None:
            q = q.where(SandboxRow.state.in_(states))
        with self.session() as s:
            return list(s.scalars(q))

    def set_state(self, sandbox_id: str, state: str, error: str | None = None) -> None:
        values: dict[str, Any] = {"state": state}
        if error is not None:
            values["error"] = error
        with self.session() as s:
            s.execute(update(SandboxRow).where(SandboxRow.id == sandbox_id).values(**values))

    def touch(self, sandbox_id: str) -> None:
        with self.session() as s:
            s.execute(
                update(SandboxRow)
                .where(SandboxRow.id == sandbox_id)
                .values(last_active_at=utcnow())
            )

    def forget_sandbox(self, sandbox_id: str) -> None:
        """Remove every trace of a sandbox that never existed (refused at creation)."""
        with self.session() as s:
            s.execute(delete(IdempotencyRow).where(IdempotencyRow.sandbox_id == sandbox_id))
            s.execute(delete(SandboxRow).where(SandboxRow.id == sandbox_id))

    def count_by_state(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(SandboxRow.state, func.count()).group_by(SandboxRow.state))
            return {state: n for state, n in rows}

    # -- idempotency ------------------------------------------------------------------

    def claim_key(self, owner: str, key: str, sandbox_id: str) -> str | None:
        """Bind ``key`` to ``sandbox_id``; returns the sandbox it was already bound to, if any."""
        try:
            with self.session() as s:
                s.add(
                    IdempotencyRow(owner=owner, key=key, sandbox_id=sandbox_id, created_at=utcnow())
                )
            return None
        except IntegrityError:
            with self.session() as s:
                row = s.get(IdempotencyRow, (owner, key))
                return row.sandbox_id if row else None

    # -- snapshots --------------------------------------------------------------------

    def add_snapshot(self, snap: Snapshot, owner: str) -> None:
        with self.session() as s:
            s.add(
                SnapshotRow(
                    id=snap.id,
                    owner=owner,
                    image=snap.image,
                    source_sandbox=snap.source_sandbox,
                    created_at=snap.created_at,
                    spec=snap.spec.model_dump_json(),
                )
            )

    def get_snapshot(self, snapshot_id: str) -> SnapshotRow | None:
        with self.session() as s:
            return s.get(SnapshotRow, snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self.session() as s:
            s.execute(delete(SnapshotRow).where(SnapshotRow.id == snapshot_id))

    # -- audit ------------------------------------------------------------------------

    def add_audit(self, **fields: Any) -> None:
        detail = fields.pop("detail", None) or {}
        with self.session() as s:
            s.add(AuditRow(ts=utcnow(), detail=json.dumps(detail, default=str), **fields))

    def query_audit(
        self,
        owner: str | None,
        sandbox: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditRecord]:
        """Records oldest first; ``owner=None`` means everyone's (admin)."""
        q = select(AuditRow).order_by(AuditRow.id)
        if owner is not None:
            q = q.where(AuditRow.owner == owner)
        if sandbox is not None:
            q = q.where(AuditRow.sandbox == sandbox)
        if since is not None:
            q = q.where(AuditRow.ts >= since)
        if limit is not None:
            q = q.limit(limit)
        with self.session() as s:
            for row in s.scalars(q):
                yield row.record()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers run while one writer commits; the busy timeout makes
    # concurrent writers wait for each other instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def is_admin(scopes: list[str]) -> bool:
    return ADMIN_SCOPE in scopes
