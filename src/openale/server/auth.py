"""Bearer-token auth: who is calling, and may they use the admin routes.

Tokens are random secrets; the store keeps only their sha256, so a leaked
database does not leak credentials. Live tokens are cached in memory by that
hash for ``TOKEN_CACHE_TTL_S``, so a request costs no database read. A
revocation made in this process (``DELETE /v1/tokens/{id}``, or the CLI's
``ale serve token revoke`` run in-process) empties the cache at once, so the
token's next request is refused; one made by another process on the same
database takes effect within ``TOKEN_CACHE_TTL_S``. An open session WebSocket
checks its token the same way on every message.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openale.server.errors import Forbidden, Unauthorized
from openale.server.schemas import ADMIN_SCOPE
from openale.server.state import app_state
from openale.server.tables import hash_secret

if TYPE_CHECKING:
    from openale.server.state import AppState
    from openale.server.store import Store

PRINCIPAL_KEY = "ale.principal"
TOKEN_CACHE_TTL_S = 5.0
_MAX_CACHED = 10_000  # distinct live tokens kept; beyond that the cache starts over

# auto_error=False: a missing header must answer our 401 body, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="a token from `ale serve token create`")


@dataclass(frozen=True)
class Principal:
    """The caller: the owner its token acts for, and its scopes."""

    token_id: str
    owner: str
    scopes: list[str] = field(default_factory=list)

    @property
    def admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes


class TokenCache:
    """Live tokens by secret hash, each trusted for ``TOKEN_CACHE_TTL_S`` after its lookup.

    Unknown or revoked secrets are never cached: a new token works at once and a
    bad one always costs a lookup.
    """

    def __init__(self, store: Store, ttl_s: float = TOKEN_CACHE_TTL_S):
        self.store = store
        self.ttl_s = ttl_s
        self._live: dict[str, tuple[float, Principal]] = {}
        self._seen_revocations = store.revocations
        self._lock = threading.Lock()

    def cached(self, secret: str) -> Principal | None:
        """The principal if it is cached and fresh (no I/O), else None."""
        key = hash_secret(secret)
        with self._lock:
            if self.store.revocations != self._seen_revocations:
                self._live.clear()
                self._seen_revocations = self.store.revocations
            hit = self._live.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        return None

    def lookup(self, secret: str) -> Principal:
        """The token's principal, from the cache or the store (blocking), or 401."""
        who = self.cached(secret)
        if who is not None:
            return who
        revocations, looked_up = self.store.revocations, time.monotonic()
        row = self.store.authenticate(secret)
        if row is None:
            raise Unauthorized("the token is unknown or revoked")
        who = Principal(token_id=row.id, owner=row.owner, scopes=row.scope_list)
        with self._lock:
            # A revocation that raced with this read must not be undone by caching it.
            if revocations == self.store.revocations == self._seen_revocations:
                if len(self._live) >= _MAX_CACHED:
                    self._live.clear()
                self._live[hash_secret(secret)] = (looked_up, who)
        return who


def token_cache(st: AppState) -> TokenCache:
    if st.token_cache is None:
        st.token_cache = TokenCache(st.store)
    return st.token_cache


def bearer_secret(header: str | None) -> str:
    """The secret of an ``Authorization: Bearer <token>`` header, or 401."""
    scheme, _, secret = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    return secret.strip()


async def authenticate(st: AppState, secret: str) -> Principal:
    """The principal of ``secret``: cached without a thread hop, else from the store."""
    cache = token_cache(st)
    who = cache.cached(secret)
    if who is None:
        who = await anyio.to_thread.run_sync(cache.lookup, secret)
    return who


async def principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the authenticated caller, or 401."""
    if creds is None or not creds.credentials:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    who = await authenticate(app_state(request), creds.credentials)
    request.scope[PRINCIPAL_KEY] = who
    return who


def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """FastAPI dependency: the caller, who must hold the admin scope (else 403)."""
    if not who.admin:
        raise Forbidden(f"this route needs a token with the {ADMIN_SCOPE!r} scope")
    return who
