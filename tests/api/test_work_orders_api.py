"""``/api/v1/work-orders``, ``/categories``, ``/districts``: intake per role, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import KnowledgeArticle, Role
from app.services.calls import CallRecorder
from app.services.kpi import KpiDefinitions, today_totals

from .conftest import T0

Login = Callable[..., dict[str, str]]


@pytest.fixture
def orders(sessions: sessionmaker[Session], make_user: Callable[..., None]) -> dict[str, int]:
    """li (agent 1001) answered c1 and c3 (same number), wang (agent 1002) answered c2; boss supervises."""
    make_user("li", Role.agent, "1001")
    make_user("wang", Role.agent, "1002")
    make_user("boss", Role.supervisor)
    rec = CallRecorder(sessions)
    ids = {}
    for call_id, caller, agent, hour in [
        ("c1", "13800000001", "1001", 1),
        ("c2", "13800000002", "1002", 2),
        ("c3", "13800000001", "1001", 3),
    ]:
        at = T0 + timedelta(hours=hour)
        rec.call_waiting(call_id, "general", caller, 0, at - timedelta(seconds=30))
        ids[call_id] = rec.call_answered(call_id, agent, at)
    return ids


def _get(client: TestClient, headers: dict[str, str], order_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/work-orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


APPEAL = {
    "category": "ENV-NOISE",
    "description": "小区旁工地夜间施工，噪音很大，影响休息。",
    "address": "漕溪北路 100 号",
    "district": "xuhui",
    "citizen_name": "张三",
    "urgent": False,
    "confidential": True,
    "disposition": "accepted",
}


def test_an_answered_call_opens_an_order_with_the_callers_number(
    client: TestClient, login: Login, orders: dict[str, int]
) -> None:
    order = _get(client, login("li"), orders["c1"])
    assert (order["status"], order["version"], order["call_id"], order["call_ids"]) == (
        "open",
        1,
        "c1",
        ["c1"],
    )
    assert (order["caller_number"], order["contact_number"], order["agent_id"]) == (
        "13800000001",
        "13800000001",
        "1001",
    )
    assert order["disposition"] is None and order["description"] == ""


def test_the_agent_saves_a_draft_then_submits_and_the_order_holds_what_was_typed(
    client: TestClient, login: Login, orders: dict[str, int]
) -> None:
    li = login("li")
    order_id = orders["c1"]
    draft = client.patch(
        f"/api/v1/work-orders/{order_id}", json={"version": 1, "description": "工地噪音"}, headers=li
    )
    assert draft.status_code == 200, draft.text
    assert (draft.json()["version"], draft.json()["status"], draft.json()["description"]) == (
        2,
        "open",
        "工地噪音",
    )

    submitted = client.post(
        f"/api/v1/work-orders/{order_id}/submit", json={"version": 2, **APPEAL}, headers=li
    )
    assert submitted.status_code == 200, submitted.text
    order = _get(client, login("boss"), order_id)
    for key, value in APPEAL.items():
        assert order[key] == value, key
    assert (order["status"], order["department"], order["submitted_by"], order["version"]) == (
        "accepted",
        "区生态环境局",
        "li",
        3,
    )
    # 10 working days after the submission, same local time
    submitted_at = datetime.fromisoformat(order["submitted_at"])
    assert datetime.fromisoformat(order["deadline_at"]) - submitted_at >= timedelta(days=12)

    # After submission the agent may no longer change it; the center may.
    again = client.patch(f"/api/v1/work-orders/{order_id}", json={"version": 3, "address": "x"}, headers=li)
    assert again.status_code == 403 and "submitted" in again.json()["detail"]
    fixed = client.patch(
        f"/api/v1/work-orders/{order_id}",
        json={"version": 3, "address": "漕溪北路 102 号"},
        headers=login("boss"),
    )
    assert fixed.status_code == 200 and fixed.json()["address"] == "漕溪北路 102 号"
    assert fixed.json()["submitted_by"] == "li"  # the center's correction does not re-submit it


def test_stale_edits_are_refused_with_409_and_nothing_is_overwritten(
    client: TestClient, login: Login, orders: dict[str, int]
) -> None:
    li, boss = login("li"), login("boss")
    url = f"/api/v1/work-orders/{orders['c1']}"
    assert client.patch(url, json={"version": 1, "description": "第一版"}, headers=li).status_code == 200
    stale = client.patch(url, json={"version": 1, "description": "旧页面上的内容"}, headers=boss)
    assert stale.status_code == 409
    assert "version 2" in stale.json()["detail"]
    assert _get(client, li, orders["c1"])["description"] == "第一版"


def test_an_agent_edits_only_the_orders_of_its_own_calls(
    client: TestClient, login: Login, orders: dict[str, int]
) -> None:
    wang = login("wang")
    assert client.get(f"/api/v1/work-orders/{orders['c1']}", headers=wang).status_code == 403
    response = client.patch(
        f"/api/v1/work-orders/{orders['c1']}", json={"version": 1, "description": "x"}, headers=wang
    )
    assert response.status_code == 403
    submit = client.post(
        f"/api/v1/work-orders/{orders['c1']}/submit", json={"version": 1, **APPEAL}, headers=wang
    )
    assert submit.status_code == 403
    assert _get(client, login("li"), orders["c1"])["version"] == 1
    listed = client.get("/api/v1/work-orders", headers=wang).json()
    assert [o["call_id"] for o in listed["items"]] == ["c2"]
    assert client.get("/api/v1/work-orders", params={"agent": "1001"}, headers=wang).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "NO-SUCH"}, "category"),
        ({"district": "atlantis"}, "district"),
        ({"disposition": "maybe"}, "disposition"),
        ({"non_appeal_kind": "bored"}, "non_appeal_kind"),
        ({"contact_number": "call me"}, "contact_number"),
        ({"description": "长" * 4001}, "description"),
        ({"colour": "red"}, "colour"),
        ({"description": "nul\x00byte"}, "description"),  # PostgreSQL text cannot hold NUL: 422, not 500
        ({"knowledge_article_id": 2**31}, "knowledge_article_id"),
    ],
)
def test_unknown_values_give_422_naming_the_field(
    client: TestClient, login: Login, orders: dict[str, int], change: dict[str, Any], field: str
) -> None:
    response = client.patch(
        f"/api/v1/work-orders/{orders['c1']}", json={"version": 1, **change}, headers=login("li")
    )
    assert response.status_code == 422, response.text
    assert field in [e["loc"][-1] for e in response.json()["detail"]]
    assert _get(client, login("li"), orders["c1"])["version"] == 1  # nothing stored


def test_submission_errors_name_every_missing_field(
    client: TestClient, login: Login, orders: dict[str, int]
) -> None:
    url = f"/api/v1/work-orders/{orders['c1']}/submit"
    response = client.post(url, json={"version": 1, "disposition": "accepted"}, headers=login("li"))
    assert response.status_code == 422
    assert [e["loc"][-1] for e in response.json()["detail"]] == ["category", "description"]
    response = client.post(url, json={"version": 1}, headers=login("li"))
    assert [e["loc"][-1] for e in response.json()["detail"]] == ["disposition"]


def test_direct_answers_and_non_appeals_close_at_once(
    client: TestClient, login: Login, orders: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        article = KnowledgeArticle(title="公积金提取", body="…", updated_by="boss", search_text="")
        session.add(article)
        session.flush()
        article_id = article.id
    li, wang = login("li"), login("wang")
    direct = client.post(
        f"/api/v1/work-orders/{orders['c1']}/submit",
        json={
            "version": 1,
            "disposition": "answered_directly",
            "category": "CONSULT-HOUSING",
            "description": "咨询公积金提取条件，已按知识库解答。",
            "knowledge_article_id": article_id,
        },
        headers=li,
    )
    assert direct.status_code == 200, direct.text
    assert (direct.json()["status"], direct.json()["deadline_at"], direct.json()["department"]) == (
        "closed",
        None,
        None,
    )
    missing = client.post(
        f"/api/v1/work-orders/{orders['c3']}/submit",
        json={"version": 1, "disposition": "answered_directly", "category": "CONSULT", "description": "x",
              "knowledge_article_id": 999999},
        headers=li,
    )  # fmt: skip
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == [
        "body",
        "knowledge_article_id",
    ]
    prank = client.post(
        f"/api/v1/work-orders/{orders['c2']}/submit",
        json={"version": 1, "disposition": "not_an_appeal", "non_appeal_kind": "prank"},
        headers=wang,
    )
    assert prank.status_code == 200 and prank.json()["status"] == "closed"

    # The acceptance rate: c1 answered directly, c2 a prank (left out), c3 still open: 1 / 2.
    with sessions() as session:
        day = T0 + timedelta(hours=2)
        totals = today_totals(session, KpiDefinitions(), day, "UTC")
    assert (totals.answered, totals.answered_directly, totals.not_an_appeal) == (3, 1, 1)
    assert totals.acceptance_rate == 0.5


def test_list_filters_and_the_tickets_alias(client: TestClient, login: Login, orders: dict[str, int]) -> None:
    boss = login("boss")
    by_caller = client.get("/api/v1/work-orders", params={"caller": "13800000001"}, headers=boss).json()
    assert [o["call_id"] for o in by_caller["items"]] == ["c3", "c1"]  # newest first
    by_call = client.get("/api/v1/work-orders", params={"call": "c2"}, headers=boss).json()
    assert [o["id"] for o in by_call["items"]] == [orders["c2"]]
    tickets = client.get("/api/v1/tickets", headers=boss).json()
    assert [t["id"] for t in tickets["items"]] == [orders["c3"], orders["c2"], orders["c1"]]
    assert client.get("/api/v1/work-orders/999999", headers=boss).status_code == 404
    assert client.get(f"/api/v1/work-orders/{2**31}", headers=boss).status_code == 422  # beyond the key type
    assert client.get("/api/v1/work-orders", params={"caller": "1\x00"}, headers=boss).status_code == 422
    assert client.get("/api/v1/work-orders").status_code == 401


def test_categories_and_districts(client: TestClient, login: Login, orders: dict[str, int]) -> None:
    li = login("li")
    body = client.get("/api/v1/categories", headers=li).json()
    env = next(c for c in body["categories"] if c["code"] == "ENV")
    noise = next(c for c in env["children"] if c["code"] == "ENV-NOISE")
    assert (noise["zh"], noise["en"], noise["deadline_days"], noise["department"]) == (
        "噪声扰民",
        "Noise",
        10,
        "区生态环境局",
    )
    districts = client.get("/api/v1/districts", headers=li).json()
    assert {"code": "xuhui", "zh": "徐汇区", "en": "Xuhui"} in districts
    assert client.get("/api/v1/categories").status_code == 401


def test_openapi_names_the_error_responses(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    submit = paths["/api/v1/work-orders/{order_id}/submit"]["post"]["responses"]
    assert {"401", "403", "404", "409", "413", "422"} <= set(submit)
    assert {"401", "403", "404", "409", "422"} <= set(
        paths["/api/v1/work-orders/{order_id}"]["patch"]["responses"]
    )
