"""Nothing acknowledged by the core is lost at shutdown; readiness tells whether writes succeed.

Issue 8, items 2 and 3. The real application runs (``create_app``); the database is made to stall
the service's writes the way a busy or locked database does, with another connection holding the
write lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``LOCK TABLE agent_transitions``). Every
presence change through the API is one storage write (a row in ``agent_transitions``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, pool, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, session_factory
from app.db.models import AgentTransition, Role
from app.main import create_app
from app.settings import Settings
from tests.api.conftest import JWT_SECRET, PASSWORD

TOGGLES = 20  # busy/ready changes per test: 2 writes each, after the log in


class WriteLock:
    """Another connection holding the database's write lock until :meth:`release`."""

    def __init__(self, db_url: str) -> None:
        self._engine = make_engine(db_url, poolclass=pool.NullPool)
        self._session: Session | None = session_factory(self._engine).writer()
        if self._engine.dialect.name == "sqlite":
            self._session.execute(text("SELECT 1"))  # in a write transaction: BEGIN IMMEDIATE
        else:
            self._session.execute(text("LOCK TABLE agent_transitions IN EXCLUSIVE MODE"))
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.rollback()
                self._session.close()
                self._session = None
                self._engine.dispose()


@pytest.fixture
def run(
    db_url: str, tmp_path: Path, sessions: sessionmaker[Session], make_user: Callable[..., None]
) -> Callable[..., Any]:
    make_user("alice", Role.agent, "1001")

    @contextmanager
    def one_run(**overrides: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
        settings = Settings(
            jwt_secret=SecretStr(JWT_SECRET),
            database_url=db_url,
            ami_port=9,
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            write_journal=str(tmp_path / "writes.journal"),
            **overrides,
        )
        with TestClient(create_app(settings)) as api:
            reply = api.post("/api/v1/token", data={"username": "alice", "password": PASSWORD})
            yield api, {"Authorization": f"Bearer {reply.json()['access_token']}"}

    return one_run


def _work(api: TestClient, alice: dict[str, str]) -> None:
    assert (
        api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice).status_code == 200
    )
    for _ in range(TOGGLES):
        assert (
            api.post("/api/v1/agents/1001/busy", json={"reason": "break"}, headers=alice).status_code == 200
        )
        assert api.post("/api/v1/agents/1001/ready", headers=alice).status_code == 200


def _alice_rows(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """Alice's own transitions: rows, and distinct (time, from, to) among them."""
    with sessions() as session:
        mine = select(AgentTransition).where(AgentTransition.actor == "alice").subquery()
        rows = session.scalar(select(func.count()).select_from(mine))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(mine.c.at, mine.c.from_state, mine.c.to_state).distinct().subquery()
            )
        )
        return int(rows or 0), int(distinct or 0)


def test_a_clean_stop_writes_the_whole_backlog(run: Callable[..., Any], db_url: str, sessions: Any) -> None:
    """The database stalls writes for 7 s at shutdown (it used to give up after 5 s and drop the rest)."""
    with run() as (api, alice):
        lock = WriteLock(db_url)
        try:
            _work(api, alice)
            assert api.app.state.distribution.writer.backlog > 0  # type: ignore[attr-defined]
            threading.Timer(7.0, lock.release).start()
        except BaseException:
            lock.release()
            raise
    assert _alice_rows(sessions) == (1 + 2 * TOGGLES, 1 + 2 * TOGGLES)


def test_writes_left_at_stop_are_journaled_and_replayed_once(
    run: Callable[..., Any], db_url: str, sessions: Any, tmp_path: Path
) -> None:
    journal = tmp_path / "writes.journal"
    lock = WriteLock(db_url)
    try:
        with run(storage_shutdown_grace=1.0) as (api, alice):
            _work(api, alice)
            # The write in progress at the stop stays blocked on the lock until it is released,
            # after the journal is written: then it commits, and is in the journal too.
            threading.Timer(3.0, lock.release).start()
        pending = [json.loads(line) for line in journal.read_text().splitlines()]
        assert len(pending) == 1 + 2 * TOGGLES
        assert {p["op"] for p in pending} == {"transition"}
        assert _alice_rows(sessions)[0] <= 1  # the blocked one, once the lock went
    finally:
        lock.release()
    started = time.monotonic()
    with run() as (api, alice):
        # replayed at start, before presence is restored from the transitions
        assert _alice_rows(sessions) == (1 + 2 * TOGGLES, 1 + 2 * TOGGLES)
        assert not journal.exists()
        agent = api.get("/api/v1/agents/1001", headers=alice).json()
        assert agent["state"] == "ready"  # restored from the replayed last transition
    assert time.monotonic() - started < 60
    with run():  # and the journal is not replayed again
        assert _alice_rows(sessions) == (1 + 2 * TOGGLES, 1 + 2 * TOGGLES)


def test_readiness_says_when_writes_do_not_go_through(run: Callable[..., Any], db_url: str) -> None:
    with run(storage_stall_seconds=1.0) as (api, alice):
        api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice)
        api.portal.call(api.app.state.distribution.writer.drain)  # type: ignore[attr-defined]
        storage = api.get("/readyz").json()["checks"]["storage"]
        assert storage == {"up": True, "status": "up", "backlog": 0}
        lock = WriteLock(db_url)
        try:
            api.post("/api/v1/agents/1001/ready", headers=alice)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                reply = api.get("/readyz")
                if not reply.json()["checks"]["storage"]["up"]:
                    break
                time.sleep(0.2)
            assert reply.status_code == 503  # (the AMI link is down here too; storage says why on its own)
            storage = reply.json()["checks"]["storage"]
            assert storage["backlog"] == 1 and "waited" in storage["status"]
            assert reply.json()["checks"]["database"]["up"] is True  # SELECT 1 still answers
        finally:
            lock.release()
        api.portal.call(api.app.state.distribution.writer.drain)  # type: ignore[attr-defined]
        assert api.get("/readyz").json()["checks"]["storage"]["up"] is True


def test_readiness_names_the_error_of_failing_writes(run: Callable[..., Any], db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a missing table is an outage (OperationalError) on SQLite; PostgreSQL: the lock test")
    with run() as (api, alice):
        engine = make_engine(db_url, poolclass=pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE agent_transitions RENAME TO agent_transitions_away")
        try:
            api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and api.get("/readyz").json()["checks"]["storage"]["up"]:
                time.sleep(0.1)
            storage = api.get("/readyz").json()["checks"]["storage"]
            assert storage["up"] is False and "no such table: agent_transitions" in storage["status"]
            metrics = api.app.state.observability.metrics  # type: ignore[attr-defined]
            assert metrics.registry.get_sample_value("hotline_storage_writes_failing") == 1
            assert metrics.registry.get_sample_value("hotline_storage_backlog") == 1
        finally:
            with engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE agent_transitions_away RENAME TO agent_transitions")
            engine.dispose()
        api.portal.call(api.app.state.distribution.writer.drain, 15)  # type: ignore[attr-defined]
        assert api.get("/readyz").json()["checks"]["storage"]["up"] is True
