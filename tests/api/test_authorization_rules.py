"""Issue 8, authorization: nobody authorizes himself; tokens die with their user; authorize first.

Runs on SQLite and PostgreSQL with the compliance API's fixtures (a real core, no AMI link).
"""
# ruff: noqa: F811  (the fixtures imported below are used as parameters)

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Role, User
from app.services.users import create_user, delete_user, revoke_tokens, set_active, set_role

from .conftest import PASSWORD
from .test_compliance_api import api, app, as_, clock  # noqa: F401  (fixtures)


def _log_in(api: TestClient, headers: dict[str, str], agent_id: str, endpoint: str) -> None:
    response = api.post(f"/api/v1/agents/{agent_id}/login", json={"endpoint": endpoint}, headers=headers)
    assert response.status_code == 200, response.text


# -- 6. nobody authorizes, forces or decides his own state or request ---------------------------------


def test_a_supervisor_who_is_an_agent_cannot_force_his_own_state(api: TestClient, as_: Any) -> None:
    tess = as_("tess")  # supervisor and agent 1003
    _log_in(api, tess, "1003", "agent3")
    assert api.post("/api/v1/agents/1003/busy", json={"reason": "meal"}, headers=tess).status_code == 200
    for state in ("busy", "ready", "not_ready", "logged_out"):
        forced = api.post("/api/v1/supervisor/agents/1003/force", json={"state": state}, headers=tess)
        assert forced.status_code == 403, (state, forced.text)
        assert "own" in forced.json()["detail"]
    live = {a["id"]: a for a in api.get("/api/v1/supervisor/agents", headers=as_("sam")).json()}
    assert (live["1003"]["state"], live["1003"]["authority"]) == ("busy", "agent")
    assert "busy_unapproved" in live["1003"]["open_incidents"]
    # another supervisor may
    sam = as_("sam")
    assert (
        api.post("/api/v1/supervisor/agents/1003/force", json={"state": "ready"}, headers=sam).status_code
        == 204
    )


def test_a_supervisor_cannot_decide_a_request_he_filed_himself(api: TestClient, as_: Any) -> None:
    sam, alice = as_("sam"), as_("alice")
    _log_in(api, alice, "1001", "agent1")
    filed = api.post("/api/v1/busy-requests", json={"agent_id": "1001", "reason": "meal"}, headers=sam)
    assert filed.status_code == 201, filed.text
    rid = filed.json()["id"]
    for decision in ("approve", "deny"):
        refused = api.post(f"/api/v1/busy-requests/{rid}/{decision}", json={}, headers=sam)
        assert refused.status_code == 403, refused.text
        assert "own" in refused.json()["detail"]
    pending = api.get("/api/v1/busy-requests", params={"status": "pending"}, headers=sam).json()
    assert [r["id"] for r in pending] == [rid]
    # another supervisor decides it: requested_by and decided_by differ
    approved = api.post(f"/api/v1/busy-requests/{rid}/approve", json={}, headers=as_("tess"))
    assert approved.status_code == 200, approved.text
    assert (approved.json()["requested_by"], approved.json()["decided_by"]) == ("sam", "tess")


# -- 7. tokens bound to the user's id and token version -----------------------------------------------


def _status(api: TestClient, headers: dict[str, str]) -> int:
    return api.get("/api/v1/agents", headers=headers).status_code


def test_an_old_token_does_not_work_for_a_new_user_of_the_same_name(
    api: TestClient, as_: Any, sessions: sessionmaker[Session]
) -> None:
    old = as_("bob")  # agent 1002, created last
    with sessions() as session:
        old_id = session.scalar(select(User.id).where(User.username == "bob"))
        delete_user(session, "bob")
        create_user(session, "bob", PASSWORD, Role.supervisor)
        new_id = session.scalar(select(User.id).where(User.username == "bob"))
    assert new_id != old_id  # ids are never reused, not even the last one on SQLite
    assert _status(api, old) == 401
    assert api.get("/api/v1/supervisor/agents", headers=old).status_code == 401
    assert _status(api, as_("bob")) == 200


def test_disabling_changing_the_role_or_revoking_ends_every_token(
    api: TestClient, as_: Any, sessions: sessionmaker[Session]
) -> None:
    first = as_("tess")
    with sessions() as session:
        set_role(session, "tess", Role.agent)
    assert _status(api, first) == 401
    second = as_("tess")
    with sessions() as session:
        set_active(session, "tess", False)
        set_active(session, "tess", True)
    assert _status(api, second) == 401  # re-enabling does not revive old tokens
    third = as_("tess")
    assert _status(api, third) == 200
    with sessions() as session:
        revoke_tokens(session, "tess")
    assert _status(api, third) == 401
    assert _status(api, as_("tess")) == 200


# -- 8. log in at a phone: authorize before saying who holds it ---------------------------------------


def test_login_at_a_held_phone_authorizes_before_naming_the_holder(api: TestClient, as_: Any) -> None:
    alice, bob = as_("alice"), as_("bob")
    _log_in(api, alice, "1001", "agent1")
    for target in ("1003", "no-such-agent"):
        refused = api.post(f"/api/v1/agents/{target}/login", json={"endpoint": "agent1"}, headers=bob)
        assert refused.status_code == 403, refused.text
        assert "1001" not in refused.text
    unknown = api.post("/api/v1/agents/9999/login", json={"endpoint": "agent1"}, headers=as_("sam"))
    assert unknown.status_code == 404, unknown.text
    assert "1001" not in unknown.text
    # the holder is named only to someone who may act on the agent
    held = api.post("/api/v1/agents/1002/login", json={"endpoint": "agent1"}, headers=bob)
    assert held.status_code == 409 and "1001" in held.json()["detail"]
