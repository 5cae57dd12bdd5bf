"""Bearer-token auth: who is calling, and may they use the admin routes.

Tokens are random secrets; the store keeps only their sha256, so a leaked
database does not leak credentials. Revocation takes effect on the next
request (nothing is cached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openale.server.errors import Forbidden, Unauthorized
from openale.server.schemas import ADMIN_SCOPE
from openale.server.state import app_state

PRINCIPAL_KEY = "ale.principal"

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


def principal(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """FastAPI dependency: the authenticated caller, or 401."""
    if creds is None or not creds.credentials:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    row = app_state(request).store.authenticate(creds.credentials)
    if row is None:
        raise Unauthorized("the token is unknown or revoked")
    who = Principal(token_id=row.id, owner=row.owner, scopes=row.scope_list)
    request.scope[PRINCIPAL_KEY] = who
    return who


def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """FastAPI dependency: the caller, who must hold the admin scope (else 403)."""
    if not who.admin:
        raise Forbidden(f"this route needs a token with the {ADMIN_SCOPE!r} scope")
    return who
