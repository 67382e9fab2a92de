"""The compliance and supervisor API on SQLite and PostgreSQL: authorization, busy requests, the log.

The core runs for real (presence, rules) behind a service whose AMI link is never started, under a
clock the tests move.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from acd.engine import QueueConfig
from agents.busy_reasons import DEFAULT_CONFIG
from agents.compliance import IncidentClosed, IncidentKind, IncidentOpened
from agents.presence import AgentState, Cause, Transition
from app.api import agents, auth, compliance, supervisor
from app.api.deps import get_settings_dep
from app.db.models import Role
from app.services.compliance import ComplianceStore, IncidentFilter
from app.services.distribution import DistributionConfig, DistributionService
from app.services.presence_watch import PresenceWatch
from app.settings import Settings

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


class _Recorder:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> Iterator[FastAPI]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = DistributionService(
            DistributionConfig((QueueConfig("general"),)),
            lambda **callbacks: object(),  # the AMI link is never started here
            _Recorder(),
            clock=clock,
        )
        app.state.distribution = service
        app.state.presence_watch = PresenceWatch(service, ComplianceStore(sessions), DEFAULT_CONFIG)
        service.writer.start()
        yield
        await service.writer.stop()

    app = FastAPI(lifespan=lifespan)
    for module in (auth, agents, compliance, supervisor):
        app.include_router(module.router)
    app.state.session_factory = sessions
    app.dependency_overrides[get_settings_dep] = lambda: settings
    app.dependency_overrides[compliance.get_now] = lambda: datetime.fromtimestamp(clock.now, UTC)
    yield app


@pytest.fixture
def api(app: FastAPI, make_user: Callable[..., None]) -> Iterator[TestClient]:
    make_user("alice", Role.agent, "1001")
    make_user("bob", Role.agent, "1002")
    make_user("sam", Role.supervisor)
    make_user("tess", Role.supervisor, "1003")  # a team lead who also takes calls
    with TestClient(app) as client:
        yield client


@pytest.fixture
def as_(api: TestClient, login: Callable[..., dict[str, str]]) -> Callable[[str], dict[str, str]]:
    return login


def drain(app: FastAPI, api: TestClient) -> None:
    """Wait until the service's storage writer wrote everything queued."""
    api.portal.call(app.state.distribution.writer.drain)  # type: ignore[union-attr]


# -- authorization -------------------------------------------------------------------------------


def test_an_agent_cannot_approve_its_own_busy_request(api: TestClient, as_: Any) -> None:
    alice, tess = as_("alice"), as_("tess")
    assert (
        api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice).status_code == 200
    )
    own = api.post("/api/v1/busy-requests", json={"agent_id": "1001", "reason": "meal"}, headers=alice)
    assert own.status_code == 201, own.text
    rid = own.json()["id"]
    assert api.post(f"/api/v1/busy-requests/{rid}/approve", json={}, headers=alice).status_code == 403
    # nor can a supervisor who is also an agent approve their own
    mine = api.post("/api/v1/busy-requests", json={"agent_id": "1003", "reason": "meal"}, headers=tess)
    denied = api.post(f"/api/v1/busy-requests/{mine.json()['id']}/approve", json={}, headers=tess)
    assert denied.status_code == 403 and "own" in denied.json()["detail"]
    # and an agent cannot request on another's behalf
    other = api.post("/api/v1/busy-requests", json={"agent_id": "1002", "reason": "meal"}, headers=alice)
    assert other.status_code == 403
    pending = api.get("/api/v1/busy-requests", params={"status": "pending"}, headers=as_("sam")).json()
    assert sorted(r["agent_id"] for r in pending) == ["1001", "1003"]
    assert [r["agent_id"] for r in api.get("/api/v1/busy-requests", headers=alice).json()] == ["1001"]


def test_an_agent_cannot_read_another_agents_history_or_incidents(
    api: TestClient, as_: Any, sessions: sessionmaker[Session]
) -> None:
    store = ComplianceStore(sessions)
    store.record_transition(
        Transition(
            "1002", T0.timestamp(), AgentState.LOGGED_OUT, AgentState.LOGGED_IN, "", Cause.AGENT, "bob"
        )
    )
    store.record_opened(
        IncidentOpened("x1", "1002", IncidentKind.BUSY_UNAPPROVED, "meal", T0.timestamp(), T0.timestamp())
    )
    alice, bob = as_("alice"), as_("bob")
    assert api.get("/api/v1/compliance/agents/1002/history", headers=alice).status_code == 403
    assert api.get("/api/v1/compliance/incidents", params={"agent": "1002"}, headers=alice).status_code == 403
    assert api.get("/api/v1/compliance/incidents/x1", headers=alice).status_code == 403
    assert api.get("/api/v1/compliance/incidents", headers=alice).json() == []  # only its own
    assert (
        api.get(
            "/api/v1/compliance/daily", params={"date": "2026-03-02", "agent": "1002"}, headers=alice
        ).status_code
        == 403
    )
    assert len(api.get("/api/v1/compliance/agents/1002/history", headers=bob).json()) == 1
    assert [i["id"] for i in api.get("/api/v1/compliance/incidents", headers=bob).json()] == ["x1"]
    # acknowledging, verifying and forcing are for supervisors
    ack = {"comment": "seen"}
    assert (
        api.post("/api/v1/compliance/incidents/x1/acknowledgements", json=ack, headers=bob).status_code == 403
    )
    assert api.get("/api/v1/compliance/verify", headers=bob).status_code == 403
    force = {"state": "ready"}
    assert api.post("/api/v1/supervisor/agents/1002/force", json=force, headers=alice).status_code == 403
    assert api.get("/api/v1/supervisor/agents", headers=alice).status_code == 403
    assert api.get("/api/v1/compliance/incidents").status_code == 401


# -- busy requests and reasons -----------------------------------------------------------------------


def test_approval_puts_the_agent_in_busy_and_is_decided_once(app: FastAPI, api: TestClient, as_: Any) -> None:
    alice, sam = as_("alice"), as_("sam")
    api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice)
    api.post("/api/v1/agents/1001/ready", headers=alice)
    rid = api.post(
        "/api/v1/busy-requests", json={"agent_id": "1001", "reason": "meal"}, headers=alice
    ).json()["id"]
    assert api.get("/api/v1/agents/1001", headers=alice).json()["state"] == "ready"  # not before approval
    approved = api.post(f"/api/v1/busy-requests/{rid}/approve", json={"comment": "ok, 30 min"}, headers=sam)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "sam")
    agent = api.get("/api/v1/agents/1001", headers=alice).json()
    assert (agent["state"], agent["reason"]) == ("busy", "meal")
    [live] = api.get("/api/v1/supervisor/agents", headers=sam).json()
    assert (live["authority"], live["open_incidents"]) == ("approved", [])
    again = api.post(f"/api/v1/busy-requests/{rid}/deny", json={}, headers=sam)
    assert again.status_code == 409 and "already decided" in again.json()["detail"]
    drain(app, api)
    assert api.get("/api/v1/compliance/incidents", headers=sam).json() == []
    [busy] = [
        t
        for t in api.get("/api/v1/compliance/agents/1001/history", headers=sam).json()
        if t["to_state"] == "busy"
    ]
    assert (busy["reason"], busy["cause"], busy["actor"]) == ("meal", "supervisor", "sam")


def test_busy_without_approval_is_logged_until_approved(
    app: FastAPI, api: TestClient, as_: Any, clock: Clock
) -> None:
    alice, sam = as_("alice"), as_("sam")
    api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice)
    assert (
        api.post("/api/v1/agents/1001/busy", json={"reason": "meal"}, headers=alice).json()["state"] == "busy"
    )
    clock.now += 120
    rid = api.post(
        "/api/v1/busy-requests", json={"agent_id": "1001", "reason": "meal"}, headers=alice
    ).json()["id"]
    api.post(f"/api/v1/busy-requests/{rid}/approve", json={}, headers=sam)
    drain(app, api)
    [incident] = api.get("/api/v1/compliance/incidents", headers=sam).json()
    assert (incident["kind"], incident["open"], incident["duration_seconds"]) == (
        "busy_unapproved",
        False,
        120.0,
    )


def test_busy_reasons_are_checked(api: TestClient, as_: Any) -> None:
    alice = as_("alice")
    api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice)
    unknown = api.post("/api/v1/agents/1001/busy", json={"reason": "nap"}, headers=alice)
    assert unknown.status_code == 422 and "unknown busy reason" in unknown.json()["detail"]
    assert api.post("/api/v1/agents/1001/busy", json={}, headers=alice).status_code == 422
    assert api.post("/api/v1/agents/1001/busy", json={"reason": "break"}, headers=alice).status_code == 200
    free = api.post("/api/v1/busy-requests", json={"agent_id": "1001", "reason": "break"}, headers=alice)
    assert free.status_code == 409 and "needs no approval" in free.json()["detail"]


# -- supervisor controls -----------------------------------------------------------------------------


def test_live_list_puts_over_limit_agents_first(api: TestClient, as_: Any, clock: Clock) -> None:
    alice, bob, sam = as_("alice"), as_("bob"), as_("sam")
    api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice)
    api.post("/api/v1/agents/1002/login", json={"endpoint": "agent2"}, headers=bob)
    api.post("/api/v1/agents/1002/busy", json={"reason": "break"}, headers=bob)  # 15 min allowed
    clock.now += 60
    api.post("/api/v1/agents/1001/busy", json={"reason": "toilet"}, headers=alice)  # 10 min allowed
    clock.now += 11 * 60
    rows = api.get("/api/v1/supervisor/agents", headers=sam).json()
    assert [(r["id"], r["over_limit_seconds"]) for r in rows] == [("1001", 60.0), ("1002", 0.0)]
    assert rows[0]["limit_seconds"] == 600 and rows[0]["seconds_in_state"] == 660


def test_supervisor_forces_states_recorded_as_supervisor(app: FastAPI, api: TestClient, as_: Any) -> None:
    alice, sam = as_("alice"), as_("sam")
    api.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}, headers=alice)
    for state in ("ready", "not_ready", "busy", "logged_out"):
        forced = api.post("/api/v1/supervisor/agents/1001/force", json={"state": state}, headers=sam)
        assert forced.status_code == 204, forced.text
    assert (
        api.post("/api/v1/supervisor/agents/1001/force", json={"state": "ready"}, headers=sam).status_code
        == 409
    )
    assert (
        api.post("/api/v1/supervisor/agents/9999/force", json={"state": "ready"}, headers=sam).status_code
        == 404
    )
    drain(app, api)
    history = api.get("/api/v1/compliance/agents/1001/history", headers=alice).json()
    assert [(h["to_state"], h["reason"], h["cause"]) for h in reversed(history)][1:] == [
        ("ready", "", "supervisor"),
        ("not_ready", "forced", "supervisor"),
        ("busy", "forced", "supervisor"),
        ("logged_out", "", "supervisor"),
    ]


# -- the log -----------------------------------------------------------------------------------------


def _incident(
    store: ComplianceStore, iid: str, agent: str, kind: IncidentKind, start: float, end: float | None
) -> None:
    store.record_opened(IncidentOpened(iid, agent, kind, "break", start, start))
    if end is not None:
        store.record_closed(IncidentClosed(iid, agent, kind, "break", start, end))


def test_incidents_filter_export_acknowledge_and_verify(
    api: TestClient, as_: Any, sessions: sessionmaker[Session], clock: Clock
) -> None:
    store, t0 = ComplianceStore(sessions), T0.timestamp()
    _incident(store, "a", "1001", IncidentKind.BUSY_OVER_LIMIT, t0, t0 + 90)
    _incident(store, "b", "1002", IncidentKind.LEFT_POST, t0 + 3600, None)
    _incident(store, "c", "1001", IncidentKind.PHONE_BUSY_WHILE_READY, t0 + 7200, t0 + 7260)
    clock.now = t0 + 3600 + 30
    sam = as_("sam")
    rows = api.get("/api/v1/compliance/incidents", headers=sam).json()
    assert [r["id"] for r in rows] == ["c", "b", "a"]  # newest first
    assert next(r for r in rows if r["id"] == "b")["duration_seconds"] == 30  # open: so far
    by = lambda **p: [r["id"] for r in api.get("/api/v1/compliance/incidents", params=p, headers=sam).json()]  # noqa: E731
    assert by(agent="1001") == ["c", "a"]
    assert by(kind="left_post") == ["b"]
    assert by(open="true") == ["b"]
    since = (T0 + timedelta(minutes=30)).isoformat()
    assert by(**{"from": since, "to": (T0 + timedelta(hours=2)).isoformat()}) == ["b"]
    assert api.get("/api/v1/compliance/incidents", params={"kind": "nap"}, headers=sam).status_code == 422

    ack = api.post(
        "/api/v1/compliance/incidents/a/acknowledgements", json={"comment": "=talked to her"}, headers=sam
    )
    assert ack.status_code == 201 and ack.json()["acknowledgements"][0]["by"] == "sam"
    assert (
        api.post(
            "/api/v1/compliance/incidents/zz/acknowledgements", json={"comment": "x"}, headers=sam
        ).status_code
        == 404
    )
    assert (
        api.post(
            "/api/v1/compliance/incidents/c/acknowledgements", json={"comment": "me"}, headers=as_("tess")
        ).status_code
        == 201
    )

    exported = api.get("/api/v1/compliance/incidents", params={"format": "csv"}, headers=sam)
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["id"], r["duration_seconds"], r["open"]) for r in table] == [
        ("c", "60.000", "no"),
        ("b", "30.000", "yes"),
        ("a", "90.000", "no"),
    ]
    assert table[2]["comments"] == "'=talked to her"  # no formula injection

    check = api.get("/api/v1/compliance/verify", headers=sam).json()
    assert (check["ok"], check["entries"]) == (True, 7)


def test_the_hash_chain_reveals_edits_and_deletions(sessions: sessionmaker[Session]) -> None:
    store, t0 = ComplianceStore(sessions), T0.timestamp()
    for n in range(4):
        _incident(store, f"i{n}", "1001", IncidentKind.BUSY_OVER_LIMIT, t0 + n * 100, t0 + n * 100 + 50)
    assert store.verify().ok
    with sessions.begin() as session:
        session.execute(text("UPDATE compliance_log SET duration_seconds = 5 WHERE seq = 4"))
    check = store.verify()
    assert not check.ok and "entry 4 was altered" in check.problem
    with sessions.begin() as session:
        session.execute(text("UPDATE compliance_log SET duration_seconds = 50 WHERE seq = 4"))
        session.execute(text("DELETE FROM compliance_log WHERE seq = 6"))
    check = store.verify()
    assert not check.ok and "entry 6 is missing" in check.problem
    with sessions.begin() as session:
        session.execute(text("DELETE FROM compliance_log WHERE seq >= 6"))
    check = store.verify()
    assert not check.ok and "its head says 8" in check.problem  # the tail was cut off


def test_dangling_incidents_are_closed_at_the_next_start(sessions: sessionmaker[Session]) -> None:
    store, t0 = ComplianceStore(sessions), T0.timestamp()
    _incident(store, "open", "1001", IncidentKind.LEFT_POST, t0, None)
    _incident(store, "done", "1001", IncidentKind.LEFT_POST, t0, t0 + 5)
    [dangling] = store.dangling()
    store.close_dangling([dangling], t0 + 60)
    views = store.incidents(IncidentFilter(agent_id="1001"), datetime.fromtimestamp(t0 + 100, UTC))
    [view] = [v for v in views if v.id == "open"]
    assert (view.open, view.duration_seconds) == (False, 60.0)
    assert store.dangling() == [] and store.verify().ok


def test_daily_report_per_agent(
    api: TestClient, as_: Any, sessions: sessionmaker[Session], clock: Clock
) -> None:
    store, t0 = ComplianceStore(sessions), T0.timestamp()
    S = AgentState
    for at, frm, to, reason in [
        (t0 - 86400, S.LOGGED_OUT, S.LOGGED_IN, ""),  # yesterday: logged in at midnight local
        (t0, S.LOGGED_IN, S.READY, ""),
        (t0 + 600, S.READY, S.ON_CALL, ""),
        (t0 + 900, S.ON_CALL, S.WRAP_UP, ""),
        (t0 + 960, S.WRAP_UP, S.BUSY, "break"),
        (t0 + 960 + 1200, S.BUSY, S.LOGGED_OUT, ""),
    ]:
        store.record_transition(Transition("1001", at, frm, to, reason, Cause.AGENT, "alice"))
    _incident(store, "x", "1001", IncidentKind.BUSY_OVER_LIMIT, t0 + 960 + 900, t0 + 960 + 1200)
    clock.now = t0 + 86400
    [row] = api.get("/api/v1/compliance/daily", params={"date": "2026-03-02"}, headers=as_("alice")).json()
    # the Shanghai day began at 16:00 UTC the day before: logged in since then, 9 hours until T0
    assert row["agent_id"] == "1001" and row["logins"] == 0
    assert row["seconds_by_state"]["logged_in"] == 9 * 3600
    assert (row["seconds_by_state"]["ready"], row["seconds_by_state"]["on_call"]) == (600, 300)
    assert row["seconds_by_state"]["wrap_up"] == 60
    assert row["busy_seconds_by_reason"] == {"break": 1200}
    assert row["logged_in_seconds"] == 9 * 3600 + 600 + 300 + 60 + 1200
    assert row["incidents"] == {"busy_over_limit": {"count": 1, "seconds": 300.0}}
    everyone = api.get(
        "/api/v1/compliance/daily", params={"date": "2026-03-02", "tz": "UTC"}, headers=as_("sam")
    ).json()
    assert {r["agent_id"] for r in everyone} == {"1001", "1002", "1003"}
    assert (
        api.get(
            "/api/v1/compliance/daily", params={"date": "2026-03-02", "tz": "Mars/Base"}, headers=as_("sam")
        ).status_code
        == 422
    )
