"""Fixtures for the storage, recorder, API and CLI tests.

Every test module runs twice: against a SQLite file and against PostgreSQL (a schema of its own in
the shared ``test`` database, selected through ``search_path``). Schemas are built with the Alembic
migrations, so the migrations are what is tested.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, pool
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.api import auth, calls, categories, knowledge, tickets, work_orders
from app.api.deps import get_settings_dep
from app.db.engine import make_engine, normalize_url, session_factory
from app.db.migrate import upgrade
from app.db.models import Base, Role
from app.services.users import create_user
from app.settings import Settings

PG_URL = os.environ.get("HOTLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
JWT_SECRET = "test-signing-key-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery"

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'hotline.sqlite3'}"
        upgrade(url)
        yield url
        return

    schema = f"hotline_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL, poolclass=pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at {PG_URL} (scripts/test.sh starts one): {exc.orig}")
    url = (
        normalize_url(PG_URL)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """A session factory on an empty database; rows are deleted after each test."""
    yield session_factory(engine)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def settings() -> Settings:
    return Settings(jwt_secret=SecretStr(JWT_SECRET), token_minutes=30)


@pytest.fixture
def client(sessions: sessionmaker[Session], settings: Settings) -> Iterator[TestClient]:
    """The routers mounted the way app/main.py mounts them."""
    app = FastAPI()
    app.include_router(auth.router)
    app.include_router(tickets.router)
    app.include_router(work_orders.router)
    app.include_router(categories.router)
    app.include_router(knowledge.router)
    app.include_router(calls.router)
    app.state.session_factory = sessions
    app.dependency_overrides[get_settings_dep] = lambda: settings
    with TestClient(app) as client:
        yield client


@pytest.fixture
def make_user(sessions: sessionmaker[Session]) -> Callable[..., None]:
    def make(username: str, role: Role, agent_id: str | None = None, password: str = PASSWORD) -> None:
        with sessions() as session:
            create_user(session, username, password, role, agent_id)

    return make


@pytest.fixture
def login(client: TestClient) -> Callable[..., dict[str, str]]:
    """Log in and return the Authorization header."""

    def do_login(username: str, password: str = PASSWORD) -> dict[str, str]:
        response = client.post("/api/v1/token", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return do_login
