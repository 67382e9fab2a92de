"""The whole service as ``hotline run`` builds it (``create_app``), for the tests of its edges.

Its AMI link points at a closed loopback port (it keeps retrying; nothing here needs calls), its
database is the module's SQLite file or PostgreSQL schema, its Redis the one of ``REDIS_URL``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, session_factory
from app.db.models import Base, Role
from app.main import create_app
from app.services.users import create_user
from app.settings import Settings

from .conftest import JWT_SECRET, PASSWORD

#: username -> (role, agent id)
USERS = {
    "alice": (Role.agent, "1001"),
    "bob": (Role.agent, "1002"),
    "tess": (Role.supervisor, "1003"),
    "sam": (Role.supervisor, None),
    "root": (Role.admin, None),
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_settings(db_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "jwt_secret": SecretStr(JWT_SECRET),
        "ami_port": closed_port(),
        "ami_secret": SecretStr("unused"),
        "ami_reconnect_max_delay": 5.0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def service_factory(db_url: str, sessions: sessionmaker[Session]) -> Iterator[Callable[..., TestClient]]:
    """``service_factory(**settings)``: a started whole service (stopped after the test) with USERS."""
    with sessions() as session:
        for name, (role, agent_id) in USERS.items():
            create_user(session, name, PASSWORD, role, agent_id)
    started: list[TestClient] = []

    def start(**overrides: object) -> TestClient:
        app: FastAPI = create_app(service_settings(db_url, **overrides))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


def bearer(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Shared:
    """One started service for a module's read-only tests, with a token per user."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._tokens: dict[str, dict[str, str]] = {}

    def bearer(self, username: str) -> dict[str, str]:
        if username not in self._tokens:
            self._tokens[username] = bearer(self.client, username)
        return self._tokens[username]


@pytest.fixture(scope="module")
def shared_service(db_url: str) -> Iterator[Shared]:
    """The whole service, started once per module and database; tests must not change its state."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        for name, (role, agent_id) in USERS.items():
            create_user(session, name, PASSWORD, role, agent_id)
    with TestClient(create_app(service_settings(db_url)), raise_server_exceptions=False) as client:
        yield Shared(client)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
