"""Passwords, access tokens and the FastAPI dependencies that enforce them.

Roles are ordered ``agent < supervisor < admin``: a role passes every check a lower role passes.
Tokens are HS256 JWTs carrying ``sub`` (the user's id), ``ver`` (the user's token version),
``name``, ``role`` and ``agent_id``. On each request the user is re-read by id and the token passes
only while the user is active and still has that token version: deleting a user (ids are never
reused), disabling one, changing its role or revoking its tokens ends every token issued before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.orm import Session, sessionmaker

from app.api.deps import SessionDep, SettingsDep
from app.db.models import Role, User
from app.settings import Settings

ALGORITHM = "HS256"
TOKEN_URL = "/api/v1/token"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32

_hasher = PasswordHash((Argon2Hasher(),))
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL)


# --- passwords -----------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Check ``password``; the second item is a new hash when the stored one uses old parameters."""
    return _hasher.verify_and_update(password, password_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password")


def burn_password_check(password: str) -> None:
    """Spend the time of a real verification, so unknown usernames don't answer faster."""
    _hasher.verify(password, _dummy_hash())


# --- tokens --------------------------------------------------------------------------------------


def require_jwt_secret(settings: Settings) -> str:
    """The signing key; raises ``RuntimeError`` if it is unset or too short.

    Call it at application start so a misconfigured service refuses to run at all.
    """
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret is not None else ""
    if not secret:
        raise RuntimeError(
            "HOTLINE_JWT_SECRET (or HOTLINE_JWT_SECRET_FILE) must be set to sign access tokens"
        )
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise RuntimeError(f"HOTLINE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long")
    return secret


def create_access_token(user: User, settings: Settings, *, now: datetime | None = None) -> str:
    """A token for ``user`` valid ``settings.token_minutes`` from ``now`` (default: the current time)."""
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user.id),
        "ver": user.token_version,
        "name": user.username,
        "role": user.role.value,
        "agent_id": user.agent_id,
        "iat": issued,
        "exp": issued + timedelta(minutes=settings.token_minutes),
    }
    return jwt.encode(claims, require_jwt_secret(settings), algorithm=ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> dict[str, Any]:
    """The verified claims; raises ``jwt.InvalidTokenError`` (incl. ``ExpiredSignatureError``)."""
    return jwt.decode(
        token,
        require_jwt_secret(settings),
        algorithms=[ALGORITHM],
        options={"require": ["sub", "ver", "exp", "iat"]},
    )


# --- request dependencies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthUser:
    """The authenticated caller of a request."""

    id: int
    username: str
    role: Role
    agent_id: str | None

    def has_role(self, role: Role) -> bool:
        return self.role.rank >= role.rank


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def current_user(
    token: Annotated[str, Depends(oauth2_scheme)], settings: SettingsDep, session: SessionDep
) -> AuthUser:
    """The user named by the bearer token; 401 if it is missing, invalid, expired or deactivated."""
    try:
        claims = decode_access_token(token, settings)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("Token has expired") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("Invalid token") from None
    user = token_holder(session, claims)
    if user is None:
        raise _unauthorized("Unknown or inactive user")
    return AuthUser(id=user.id, username=user.username, role=user.role, agent_id=user.agent_id)


def token_still_valid(sessions: sessionmaker[Session], token: str, settings: Settings) -> bool:
    """Whether ``token`` would still be accepted now: for long-lived responses (push streams) to re-check."""
    try:
        claims = decode_access_token(token, settings)
    except jwt.InvalidTokenError:
        return False
    with sessions() as session:
        return token_holder(session, claims) is not None


def token_holder(session: Session, claims: dict[str, Any]) -> User | None:
    """The active user the verified ``claims`` were issued to, if that token has not been revoked."""
    try:
        user_id, version = int(claims["sub"]), int(claims["ver"])
    except (TypeError, ValueError):
        return None
    user = session.get(User, user_id) if 0 < user_id < 2**63 else None
    if user is None or not user.active or user.token_version != version:
        return None
    return user


CurrentUserDep = Annotated[AuthUser, Depends(current_user)]


def require_roles(*roles: Role | str) -> Callable[[AuthUser], AuthUser]:
    """A dependency admitting users holding any of ``roles`` or a higher one; 403 otherwise."""
    if not roles:
        raise ValueError("require_roles needs at least one role")
    lowest = min((Role(r) for r in roles), key=lambda r: r.rank)

    def dependency(user: CurrentUserDep) -> AuthUser:
        if not user.has_role(lowest):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"Requires role {lowest.value} or higher")
        return user

    return dependency


def authorize_agent(agent_id: str | None, user: AuthUser) -> None:
    """403 unless ``user`` is a supervisor/admin or is the agent ``agent_id`` itself."""
    if user.has_role(Role.supervisor):
        return
    if agent_id is None or user.agent_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Agents may only access their own records")


def refuse_own(user: AuthUser, agent_id: str | None, requested_by: str | None = None, *, detail: str) -> None:
    """403 when ``user`` would authorize, force or decide something of his own.

    The one rule behind every supervisor's decision: not on his own agent (``agent_id``), nor on a
    request he filed himself (``requested_by``), whatever his role.
    """
    own_agent = user.agent_id is not None and user.agent_id == agent_id
    if own_agent or (requested_by is not None and requested_by == user.username):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)
