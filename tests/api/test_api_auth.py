"""Token issuance and verification, role checks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Role, User
from app.security import AuthUser, authorize_agent, create_access_token, require_jwt_secret, require_roles
from app.settings import Settings

from .conftest import JWT_SECRET, PASSWORD


def _token(client: TestClient, username: str, password: str) -> httpx.Response:
    return client.post("/api/v1/token", data={"username": username, "password": password})


def test_good_password_issues_token(client: TestClient, make_user: Callable[..., None]) -> None:
    make_user("li", Role.agent, "1001")
    response = _token(client, "li", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["role"], body["agent_id"], body["expires_in"]) == (
        "bearer",
        "agent",
        "1001",
        30 * 60,
    )
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"])
    assert (claims["name"], claims["role"], claims["agent_id"], claims["ver"]) == ("li", "agent", "1001", 0)
    assert claims["sub"].isdigit()  # the user's id, not the reusable name
    assert claims["exp"] - claims["iat"] == 30 * 60


@pytest.mark.parametrize(("username", "password"), [("li", "wrong password"), ("nobody", PASSWORD)])
def test_bad_credentials_401(
    client: TestClient, make_user: Callable[..., None], username: str, password: str
) -> None:
    make_user("li", Role.agent, "1001")
    response = _token(client, username, password)
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_inactive_user_cannot_log_in_nor_use_a_token(
    client: TestClient,
    sessions: sessionmaker[Session],
    make_user: Callable[..., None],
    login: Callable[..., dict[str, str]],
) -> None:
    make_user("boss", Role.supervisor)
    headers = login("boss")
    with sessions.begin() as session:
        session.execute(update(User).values(active=False))
    assert _token(client, "boss", PASSWORD).status_code == 401
    response = client.get("/api/v1/tickets", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "Unknown or inactive user"


def test_missing_token_401(client: TestClient) -> None:
    response = client.get("/api/v1/tickets")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_expired_token_401(
    client: TestClient, sessions: sessionmaker[Session], settings: Settings, make_user: Callable[..., None]
) -> None:
    make_user("boss", Role.supervisor)
    with sessions() as session:
        user = session.scalars(select(User)).one()
    token = create_access_token(user, settings, now=datetime.now(UTC) - timedelta(minutes=31))
    response = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Token has expired"}


@pytest.mark.parametrize("secret", ["another-signing-key-that-is-long-enough-xyz", None])
def test_forged_or_garbage_token_401(
    client: TestClient, make_user: Callable[..., None], secret: str | None
) -> None:
    make_user("boss", Role.supervisor)
    now = datetime.now(UTC)
    claims = {"sub": "boss", "role": "admin", "agent_id": None, "iat": now, "exp": now + timedelta(hours=1)}
    token = jwt.encode(claims, secret, algorithm="HS256") if secret else "not.a.jwt"
    response = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token"}


@pytest.mark.parametrize("secret", [None, "", "too-short"])
def test_signing_key_is_required(secret: str | None) -> None:
    settings = Settings(jwt_secret=None if secret is None else SecretStr(secret))
    with pytest.raises(RuntimeError, match="HOTLINE_JWT_SECRET"):
        require_jwt_secret(settings)


def test_role_order() -> None:
    agent = AuthUser(id=1, username="li", role=Role.agent, agent_id="1001")
    supervisor = AuthUser(id=2, username="boss", role=Role.supervisor, agent_id=None)
    admin = AuthUser(id=3, username="root", role=Role.admin, agent_id=None)
    only_supervisors = require_roles(Role.supervisor)
    assert only_supervisors(supervisor) is supervisor
    assert only_supervisors(admin) is admin
    with pytest.raises(HTTPException) as denied:
        only_supervisors(agent)
    assert denied.value.status_code == 403

    authorize_agent("1001", agent)
    authorize_agent("1002", supervisor)
    authorize_agent("1002", admin)
    for other in ("1002", None):
        with pytest.raises(HTTPException) as denied:
            authorize_agent(other, agent)
        assert denied.value.status_code == 403
