"""Concurrent writes through the API on the embedded SQLite (and PostgreSQL): no "database is locked".

Issue 8, item 4: eight threads creating, denying and acknowledging busy requests and incidents got
500s from SQLite's "database is locked" (a deferred transaction that read first cannot take the
write lock while another writer holds it). The real application runs (``create_app``), its
storage writer busy at the same time with the presence transitions the test causes.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from agents.compliance import IncidentKind, IncidentOpened
from app.db.engine import make_engine
from app.db.models import Role
from app.main import create_app
from app.services.compliance import ComplianceStore
from app.settings import Settings
from tests.api.conftest import JWT_SECRET, PASSWORD, T0

THREADS = 8
ROUNDS = 12  # per thread: a request created, denied, an incident acknowledged, a presence change


@pytest.fixture
def api(db_url: str, sessions: sessionmaker[Session], make_user: Callable[..., None]) -> Any:
    for n in range(THREADS):
        make_user(f"agent{n}", Role.agent, f"20{n:02d}")
    make_user("sam", Role.supervisor)
    settings = Settings(
        jwt_secret=SecretStr(JWT_SECRET),
        database_url=db_url,
        ami_port=9,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _token(api: TestClient, user: str) -> dict[str, str]:
    reply = api.post("/api/v1/token", data={"username": user, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def test_eight_threads_of_busy_requests_decisions_and_acknowledgements(
    api: TestClient, sessions: sessionmaker[Session]
) -> None:
    store = ComplianceStore(sessions)
    for n in range(THREADS):
        at = T0.timestamp()
        store.record_opened(IncidentOpened(f"c{n}", f"20{n:02d}", IncidentKind.LEFT_POST, "", at, at))
    sam = _token(api, "sam")
    agents = [_token(api, f"agent{n}") for n in range(THREADS)]
    statuses: Counter[tuple[str, int]] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        me, agent = agents[n], f"20{n:02d}"
        api.post(f"/api/v1/agents/{agent}/login", json={"endpoint": f"phone{n}"}, headers=me)
        for _ in range(ROUNDS):
            calls = []
            made = api.post("/api/v1/busy-requests", json={"agent_id": agent, "reason": "meal"}, headers=me)
            calls.append(("create", made))
            if made.status_code == 201:
                rid = made.json()["id"]
                calls.append(("deny", api.post(f"/api/v1/busy-requests/{rid}/deny", json={}, headers=sam)))
            ack = api.post(
                f"/api/v1/compliance/incidents/c{n}/acknowledgements", json={"comment": "seen"}, headers=sam
            )
            calls.append(("acknowledge", ack))
            calls.append(("ready", api.post(f"/api/v1/agents/{agent}/ready", headers=me)))
            with lock:
                for what, reply in calls:
                    statuses[(what, reply.status_code)] += 1
                    if reply.status_code >= 500:
                        errors.append(f"{what}: {reply.status_code} {reply.text[:200]}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "workers did not finish in 120 s"
    assert errors == [], f"{len(errors)} server errors, e.g. {errors[:3]}; all: {dict(statuses)}"
    writes = THREADS * ROUNDS
    done = (statuses[("create", 201)], statuses[("deny", 200)], statuses[("acknowledge", 201)])
    assert done == (writes, writes, writes), dict(statuses)
    assert api.get("/api/v1/compliance/verify", headers=sam).json()["ok"] is True


def test_the_embedded_sqlite_is_set_up_for_concurrent_use(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    engine: Engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    finally:
        engine.dispose()
