"""``/api/v1/tickets`` and ``/api/v1/calls``: visibility by role, filters, errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.api.deps import MAX_PAGE_SIZE
from app.db.models import Role
from app.services.calls import CallRecorder

from .conftest import T0

Login = Callable[..., dict[str, str]]


@pytest.fixture
def records(sessions: sessionmaker[Session], make_user: Callable[..., None]) -> dict[str, int]:
    """Users li (agent 1001), wang (agent 1002), boss (supervisor), root (admin), and calls:

    c1  general 13800000001  answered by 1001 at T0+1h    (ended)
    c2  general 13800000002  answered by 1002 at T0+2h
    c3  vip     13800000001  answered by 1001 at T0+3h
    c4  general 13800000004  abandoned (enqueued T0+4h)
    c5  vip     13800000005  waiting   (enqueued T0+5h)
    """
    make_user("li", Role.agent, "1001")
    make_user("wang", Role.agent, "1002")
    make_user("boss", Role.supervisor)
    make_user("root", Role.admin)
    rec = CallRecorder(sessions)
    tickets = {}
    for call_id, queue, caller, agent, hour in [
        ("c1", "general", "13800000001", "1001", 1),
        ("c2", "general", "13800000002", "1002", 2),
        ("c3", "vip", "13800000001", "1001", 3),
    ]:
        at = T0 + timedelta(hours=hour)
        rec.call_waiting(call_id, queue, caller, 0, at - timedelta(seconds=30))
        tickets[call_id] = rec.call_answered(call_id, agent, at)
    rec.call_ended("c1", T0 + timedelta(hours=1, minutes=5), "16")
    rec.call_waiting("c4", "general", "13800000004", 0, T0 + timedelta(hours=4))
    rec.call_abandoned("c4", T0 + timedelta(hours=4, minutes=1), "16")
    rec.call_waiting("c5", "vip", "13800000005", 1, T0 + timedelta(hours=5))
    return tickets


def _iso(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def _call_ids(response_json: dict) -> list[str]:
    return [item["call_id"] for item in response_json["items"]]


def test_agent_sees_only_own_tickets(client: TestClient, login: Login, records: dict[str, int]) -> None:
    headers = login("li")
    response = client.get("/api/v1/tickets", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert _call_ids(body) == ["c3", "c1"]
    assert body["total"] == 2
    assert client.get("/api/v1/tickets", params={"agent": "1001"}, headers=headers).status_code == 200

    other = client.get("/api/v1/tickets", params={"agent": "1002"}, headers=headers)
    assert other.status_code == 403
    assert other.json() == {"detail": "Agents may only access their own records"}

    own = client.get(f"/api/v1/tickets/{records['c1']}", headers=headers)
    assert own.status_code == 200
    assert own.json()["ended_at"] == _iso(1 + 5 / 60).replace("+00:00", "Z")
    assert client.get(f"/api/v1/tickets/{records['c2']}", headers=headers).status_code == 403


@pytest.mark.parametrize("username", ["boss", "root"])
def test_supervisors_and_admins_see_all_tickets(
    client: TestClient, login: Login, records: dict[str, int], username: str
) -> None:
    headers = login(username)
    assert _call_ids(client.get("/api/v1/tickets", headers=headers).json()) == ["c3", "c2", "c1"]
    ticket = client.get(f"/api/v1/tickets/{records['c2']}", headers=headers).json()
    assert (ticket["id"], ticket["agent_id"], ticket["status"]) == (records["c2"], "1002", "open")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"agent": "1001"}, ["c3", "c1"]),
        ({"caller": "13800000001"}, ["c3", "c1"]),
        ({"caller": "13800000001", "agent": "1002"}, []),
        ({"status": "open"}, ["c3", "c2", "c1"]),
        ({"from": _iso(2)}, ["c3", "c2"]),
        ({"to": _iso(2)}, ["c1"]),
        ({"from": _iso(1.5), "to": _iso(2.5)}, ["c2"]),
        ({"from": "2026-03-01T19:00:00+08:00"}, ["c3", "c2"]),  # T0+2h in Beijing time
        ({"limit": 2}, ["c3", "c2"]),
        ({"limit": 2, "offset": 2}, ["c1"]),
    ],
)
def test_ticket_filters(
    client: TestClient, login: Login, records: dict[str, int], params: dict, expected: list[str]
) -> None:
    response = client.get("/api/v1/tickets", params=params, headers=login("boss"))
    assert response.status_code == 200, response.text
    assert _call_ids(response.json()) == expected


def test_pagination_reports_total(client: TestClient, login: Login, records: dict[str, int]) -> None:
    body = client.get("/api/v1/tickets", params={"limit": 1, "offset": 1}, headers=login("boss")).json()
    assert (body["total"], body["limit"], body["offset"], _call_ids(body)) == (3, 1, 1, ["c2"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": MAX_PAGE_SIZE + 1}, "Input should be less than or equal to 200"),
        ({"limit": 0}, "Input should be greater than or equal to 1"),
        ({"offset": -1}, "Input should be greater than or equal to 0"),
        ({"status": "bogus"}, "Input should be 'open'"),
        ({"from": "yesterday"}, "Input should be a valid datetime"),
        ({"from": "2026-03-01T09:00:00"}, "Input should have timezone info"),
    ],
)
def test_invalid_ticket_params_422(
    client: TestClient, login: Login, records: dict[str, int], params: dict, message: str
) -> None:
    response = client.get("/api/v1/tickets", params=params, headers=login("boss"))
    assert response.status_code == 422
    assert any(error["msg"].startswith(message) for error in response.json()["detail"])


def test_inverted_time_range_422(client: TestClient, login: Login, records: dict[str, int]) -> None:
    response = client.get("/api/v1/tickets", params={"from": _iso(2), "to": _iso(1)}, headers=login("boss"))
    assert response.status_code == 422
    [error] = response.json()["detail"]  # the shape of every 422
    assert (error["loc"], error["msg"], error["type"]) == (
        ["query", "to"],
        "'from' must be before 'to'",
        "value_error",
    )


def test_ticket_not_found_and_bad_id(client: TestClient, login: Login, records: dict[str, int]) -> None:
    headers = login("boss")
    missing = client.get("/api/v1/tickets/999999", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Ticket 999999 not found"}
    assert client.get("/api/v1/tickets/abc", headers=headers).status_code == 422


def test_agents_may_not_list_calls(client: TestClient, login: Login, records: dict[str, int]) -> None:
    response = client.get("/api/v1/calls", headers=login("li"))
    assert response.status_code == 403
    assert response.json() == {"detail": "Requires role supervisor or higher"}
    assert client.get("/api/v1/calls").status_code == 401


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["c5", "c4", "c3", "c2", "c1"]),
        ({"outcome": "abandoned"}, ["c4"]),
        ({"outcome": "waiting"}, ["c5"]),
        ({"outcome": "answered", "queue": "general"}, ["c2", "c1"]),
        ({"queue": "vip"}, ["c5", "c3"]),
        ({"from": _iso(3), "to": _iso(5)}, ["c4"]),
        ({"limit": 2, "offset": 1}, ["c4", "c3"]),
    ],
)
def test_call_filters(
    client: TestClient, login: Login, records: dict[str, int], params: dict, expected: list[str]
) -> None:
    response = client.get("/api/v1/calls", params=params, headers=login("root"))
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == expected


def test_call_fields_and_bad_outcome(client: TestClient, login: Login, records: dict[str, int]) -> None:
    headers = login("boss")
    [c4] = client.get("/api/v1/calls", params={"outcome": "abandoned"}, headers=headers).json()["items"]
    assert c4 == {
        "id": "c4",
        "queue": "general",
        "caller_number": "13800000004",
        "priority": 0,
        "enqueued_at": _iso(4).replace("+00:00", "Z"),
        "answered_at": None,
        "ended_at": (T0 + timedelta(hours=4, minutes=1)).isoformat().replace("+00:00", "Z"),
        "agent_id": None,
        "outcome": "abandoned",
        "hangup_cause": "16",
        "overflow_to": None,
        "overflow_reason": None,
    }
    response = client.get("/api/v1/calls", params={"outcome": "lost"}, headers=headers)
    assert response.status_code == 422
    assert "Input should be 'waiting', 'ringing', 'answered', 'abandoned' or 'overflowed'" in [
        e["msg"] for e in response.json()["detail"]
    ]
