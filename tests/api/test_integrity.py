"""The incident log and the records across restarts (issue 8, items 1 and 5), on SQLite and PostgreSQL.

The restart tests run the real application (``app.main.create_app``, its lifespan, its storage
writer and presence restore) twice on the same database; the AMI link points at a closed port.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import delete, text
from sqlalchemy.orm import Session, sessionmaker

from agents.compliance import IncidentClosed, IncidentKind, IncidentOpened
from app.db.models import ComplianceChainHead, ComplianceEntry, Role
from app.main import create_app
from app.services.compliance import GENESIS, ComplianceStore, entry_hash
from app.settings import Settings
from tests.api.conftest import JWT_SECRET, PASSWORD

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def service_settings(db_url: str, tmp_path: Any) -> Settings:
    return Settings(
        jwt_secret=SecretStr(JWT_SECRET),
        database_url=db_url,
        ami_port=9,  # nothing listens: the link keeps retrying, the API works
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )


@pytest.fixture
def run(
    service_settings: Settings, sessions: sessionmaker[Session], make_user: Callable[..., None]
) -> Callable[[], Any]:
    """``with run() as (api, login):`` one run of the service; each ``with`` is a fresh process start."""
    make_user("alice", Role.agent, "1001")
    make_user("bob", Role.agent, "1002")
    make_user("sam", Role.supervisor)

    @contextmanager
    def one_run() -> Iterator[tuple[TestClient, Callable[[str], dict[str, str]]]]:
        with TestClient(create_app(service_settings)) as api:

            def login(user: str) -> dict[str, str]:
                reply = api.post("/api/v1/token", data={"username": user, "password": PASSWORD})
                assert reply.status_code == 200, reply.text
                return {"Authorization": f"Bearer {reply.json()['access_token']}"}

            yield api, login
            api.portal.call(api.app.state.distribution.writer.drain)  # type: ignore[attr-defined]

    return one_run


def _busy(api: TestClient, headers: dict[str, str], agent: str, endpoint: str, reason: str) -> None:
    for path, body in (("login", {"endpoint": endpoint}), ("busy", {"reason": reason})):
        reply = api.post(f"/api/v1/agents/{agent}/{path}", json=body, headers=headers)
        assert reply.status_code == 200, reply.text


def _incidents(api: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    api.portal.call(api.app.state.distribution.writer.drain)  # type: ignore[attr-defined]
    reply = api.get("/api/v1/compliance/incidents", params=params, headers=headers)
    assert reply.status_code == 200, reply.text
    return list(reply.json())


# -- item 1: incident ids are unique forever --------------------------------------------------------


def test_incident_ids_stay_unique_across_restarts(run: Callable[[], Any]) -> None:
    with run() as (api, login):
        alice = login("alice")
        _busy(api, alice, "1001", "agent1", "training")  # needs approval: busy_unapproved at once
        assert api.post("/api/v1/agents/1001/logout", headers=alice).status_code == 200
        [first] = _incidents(api, login("sam"))
        assert first["open"] is False
    with run() as (api, login):
        sam = login("sam")
        _busy(api, login("bob"), "1002", "agent2", "training")
        second = next(i for i in _incidents(api, sam) if i["agent_id"] == "1002")
        assert second["id"] != first["id"]
        assert (second["open"], second["ended_at"]) == (True, None)  # not the old one's end
        mine = api.get(f"/api/v1/compliance/incidents/{second['id']}", headers=sam).json()
        assert (mine["agent_id"], mine["open"]) == ("1002", True)
        path = f"/api/v1/compliance/incidents/{first['id']}/acknowledgements"
        ack = api.post(path, json={"comment": "old"}, headers=sam)
        assert ack.status_code == 201 and ack.json()["agent_id"] == "1001"  # lands on the old one
        assert (
            api.get(f"/api/v1/compliance/incidents/{second['id']}", headers=sam).json()["acknowledgements"]
            == []
        )
        assert api.get("/api/v1/compliance/verify", headers=sam).json()["ok"] is True


def test_a_restored_unapproved_busy_keeps_its_open_incident(run: Callable[[], Any]) -> None:
    with run() as (api, login):
        _busy(api, login("alice"), "1001", "agent1", "training")
        [before] = _incidents(api, login("sam"))
        assert (before["kind"], before["open"]) == ("busy_unapproved", True)
    with run() as (api, login):
        sam = login("sam")
        agent = api.get("/api/v1/agents/1001", headers=sam).json()
        assert (agent["state"], agent["reason"]) == ("busy", "training")  # restored
        [after] = _incidents(api, sam, open="true")
        assert (after["id"], after["kind"], after["started_at"]) == (
            before["id"],
            "busy_unapproved",
            before["started_at"],
        )
        live = api.get("/api/v1/supervisor/agents", headers=sam).json()
        [row] = [a for a in live if a["id"] == "1001"]
        assert (row["open_incidents"], row["authority"]) == (["busy_unapproved"], "agent")
        assert api.post("/api/v1/agents/1001/ready", headers=login("alice")).status_code == 200
        [closed] = _incidents(api, sam)
        assert (closed["id"], closed["open"]) == (before["id"], False)


def test_other_incidents_left_open_are_closed_at_the_next_start(
    run: Callable[[], Any], sessions: sessionmaker[Session]
) -> None:
    store = ComplianceStore(sessions)
    store.record_opened(IncidentOpened("gone", "1001", IncidentKind.LEFT_POST, "unregistered", T0, T0))
    # an unapproved busy whose agent is not restored (logged out): nothing carries it on
    store.record_opened(IncidentOpened("meal", "1002", IncidentKind.BUSY_UNAPPROVED, "meal", T0, T0))
    with run() as (api, login):
        sam = login("sam")
        assert _incidents(api, sam, open="true") == []
        assert api.get("/api/v1/compliance/verify", headers=sam).json()["ok"] is True


def test_replayed_incident_writes_are_stored_once(sessions: sessionmaker[Session]) -> None:
    store = ComplianceStore(sessions)
    opened = IncidentOpened("x1", "1001", IncidentKind.BUSY_OVER_LIMIT, "break", T0, T0)
    closed = IncidentClosed("x1", "1001", IncidentKind.BUSY_OVER_LIMIT, "break", T0, T0 + 5)
    for _ in range(2):
        store.record_opened(opened)
        store.record_closed(closed)
    check = store.verify()
    assert (check.ok, check.entries) == (True, 2)


# -- item 5: the hash covers exactly what is stored -------------------------------------------------


def test_a_sub_millisecond_change_of_a_duration_is_detected(sessions: sessionmaker[Session]) -> None:
    store = ComplianceStore(sessions)
    store.record_opened(IncidentOpened("d1", "1001", IncidentKind.BUSY_OVER_LIMIT, "break", T0, T0))
    store.record_closed(IncidentClosed("d1", "1001", IncidentKind.BUSY_OVER_LIMIT, "break", T0, T0 + 50.25))
    assert store.verify().ok
    with sessions.begin() as session:
        stored = session.execute(text("SELECT duration_seconds FROM compliance_log WHERE seq = 2")).scalar()
        assert stored == (T0 + 50.25) - T0  # stored as computed, not rounded
        session.execute(text("UPDATE compliance_log SET duration_seconds = 50.2504 WHERE seq = 2"))
    check = store.verify()
    assert not check.ok and "entry 2 was altered" in check.problem


def test_entries_hashed_the_old_way_still_verify(sessions: sessionmaker[Session]) -> None:
    """Entries written before hash version 2 (durations with 3 decimals) keep verifying."""
    started = datetime.fromtimestamp(T0, UTC)
    old = ComplianceEntry(
        seq=1,
        entry="closed",
        incident_id="old",
        agent_id="1001",
        kind="busy_over_limit",
        reason="break",
        started_at=started,
        ended_at=datetime.fromtimestamp(T0 + 12.5, UTC),
        duration_seconds=12.5,
        actor="system",
        comment="",
        recorded_at=started,
        prev_hash=GENESIS,
        hash_version=1,
    )
    old.hash = entry_hash(old)
    with sessions.begin() as session:
        session.execute(delete(ComplianceChainHead))
        session.add_all([old, ComplianceChainHead(id=1, last_seq=1, last_hash=old.hash)])
    store = ComplianceStore(sessions)
    store.record_opened(IncidentOpened("new", "1001", IncidentKind.LEFT_POST, "unregistered", T0, T0))
    check = store.verify()
    assert (check.ok, check.entries) == (True, 2), check.problem
