"""User accounts: creation rules and authentication."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Agent, Role, User
from app.security import burn_password_check, hash_password, verify_password

MIN_PASSWORD_LENGTH = 8


class UserError(ValueError):
    """A user cannot be created as asked; the message says why, for the operator."""


def create_user(
    session: Session, username: str, password: str, role: Role | str, agent_id: str | None = None
) -> User:
    """Create and commit a user, creating the agent row if ``agent_id`` is new.

    An ``agent`` user must be bound to an agent id: it is what limits them to their own records.
    """
    role = Role(role)
    username = username.strip()
    if not username:
        raise UserError("username must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if role is Role.agent and not agent_id:
        raise UserError("a user with role 'agent' needs an agent id (--agent)")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} already exists")
    if agent_id and session.get(Agent, agent_id) is None:
        session.add(Agent(id=agent_id, name=username))
    user = User(username=username, password_hash=hash_password(password), role=role, agent_id=agent_id)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:  # created concurrently since the check above
        session.rollback()
        raise UserError(f"user {username!r} already exists") from exc
    return user


def _existing(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def revoke_tokens(session: Session, username: str) -> User:
    """End every token issued to ``username`` so far (the user logs in again)."""
    user = _existing(session, username)
    user.token_version += 1
    session.commit()
    return user


def set_active(session: Session, username: str, active: bool) -> User:
    """Disable or re-enable a user; either way its earlier tokens are revoked."""
    user = _existing(session, username)
    user.active = active
    user.token_version += 1
    session.commit()
    return user


def set_role(session: Session, username: str, role: Role | str, agent_id: str | None = None) -> User:
    """Change a user's role (and agent id); its earlier tokens, which name the old role, are revoked."""
    role = Role(role)
    user = _existing(session, username)
    agent_id = agent_id or user.agent_id
    if role is Role.agent and not agent_id:
        raise UserError("a user with role 'agent' needs an agent id (--agent)")
    if agent_id and session.get(Agent, agent_id) is None:
        session.add(Agent(id=agent_id, name=username))
    user.role, user.agent_id = role, agent_id
    user.token_version += 1
    session.commit()
    return user


def delete_user(session: Session, username: str) -> None:
    """Delete a user. Its tokens die with it: they name its id, which is never given to anyone again."""
    session.delete(_existing(session, username))
    session.commit()


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or ``None``.

    Upgrades the stored hash when the hasher's parameters have changed since it was made.
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        burn_password_check(password)
        return None
    valid, new_hash = verify_password(password, user.password_hash)
    if not valid:
        return None
    if new_hash is not None:
        user.password_hash = new_hash
        session.commit()
    return user
