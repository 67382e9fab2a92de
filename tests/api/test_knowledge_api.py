"""``/api/v1/knowledge``: articles by role, and Chinese full-text search on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.db.models import Role
from app.services.knowledge import query_terms, terms

Login = Callable[..., dict[str, str]]

ARTICLES = [
    {
        "title": "住房公积金提取条件",
        "body": "职工购买、建造自住住房的，可以申请提取住房公积金账户余额。",
        "category": "CONSULT-HOUSING",
    },
    {
        "title": "夜间施工噪声投诉",
        "body": "夜间22时至次日6时禁止产生噪声污染的建筑施工作业，市民可投诉。",
        "category": "ENV-NOISE",
    },
    {
        "title": "Water outage notice",
        "body": "停水通知：徐汇区部分路段计划停水检修。",
        "category": "CITY-WATER",
    },
]


@pytest.fixture
def kb(client: TestClient, make_user: Callable[..., None], login: Login) -> dict[str, int]:
    make_user("li", Role.agent, "1001")
    make_user("boss", Role.supervisor)
    boss = login("boss")
    ids = {}
    for article in ARTICLES:
        response = client.post("/api/v1/knowledge", json=article, headers=boss)
        assert response.status_code == 201, response.text
        ids[article["title"]] = response.json()["id"]
    return ids


def _titles(client: TestClient, headers: dict[str, str], q: str, **params: object) -> list[str]:
    response = client.get("/api/v1/knowledge", params={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [a["title"] for a in response.json()["items"]]


def test_terms_are_characters_bigrams_and_words() -> None:
    assert terms("施工噪音 Noise!") == ["施", "工", "噪", "音", "施工", "工噪", "噪音", "noise"]
    assert query_terms("噪音") == ["噪音"]
    assert query_terms("噪") == ["噪"]
    assert query_terms("  ，。 ") == []


def test_chinese_search_finds_words_inside_sentences(
    client: TestClient, login: Login, kb: dict[str, int]
) -> None:
    li = login("li")
    assert _titles(client, li, "公积金") == ["住房公积金提取条件"]
    assert _titles(client, li, "噪声") == ["夜间施工噪声投诉"]
    assert _titles(client, li, "施工 噪声") == ["夜间施工噪声投诉"]
    assert _titles(client, li, "停水") == ["Water outage notice"]
    assert _titles(client, li, "water") == ["Water outage notice"]
    assert _titles(client, li, "噪") == ["夜间施工噪声投诉"]  # a single character
    assert _titles(client, li, "噪声 公积金") == []  # every term must match
    assert _titles(client, li, "地铁") == []
    assert _titles(client, li, '"*) OR (') == []  # query syntax is not passed through
    assert _titles(client, li, "提取", category="ENV-NOISE") == []


def test_validity_period_and_updates_reindex(client: TestClient, login: Login, kb: dict[str, int]) -> None:
    boss, li = login("boss"), login("li")
    article_id = kb["夜间施工噪声投诉"]
    past = datetime.now(UTC) - timedelta(days=1)
    body = {**ARTICLES[1], "body": "本条已改为：道路施工扬尘投诉。", "valid_until": past.isoformat()}
    response = client.put(f"/api/v1/knowledge/{article_id}", json=body, headers=boss)
    assert response.status_code == 200, response.text
    assert _titles(client, li, "扬尘") == []  # expired: not offered to agents
    assert _titles(client, li, "扬尘", valid="false") == ["夜间施工噪声投诉"]
    assert _titles(client, li, "夜间22时", valid="false") == []  # the old body is no longer indexed


def test_only_supervisors_write_and_bad_input_is_refused(
    client: TestClient, login: Login, kb: dict[str, int]
) -> None:
    li, boss = login("li"), login("boss")
    assert client.post("/api/v1/knowledge", json=ARTICLES[0], headers=li).status_code == 403
    assert client.delete(f"/api/v1/knowledge/{kb['住房公积金提取条件']}", headers=li).status_code == 403
    bad = client.post("/api/v1/knowledge", json={**ARTICLES[0], "category": "NOPE"}, headers=boss)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "category"]
    now = datetime.now(UTC)
    period = {"valid_from": now.isoformat(), "valid_until": (now - timedelta(hours=1)).isoformat()}
    assert client.post("/api/v1/knowledge", json={**ARTICLES[0], **period}, headers=boss).status_code == 422
    assert (
        client.post("/api/v1/knowledge", json={**ARTICLES[0], "title": ""}, headers=boss).status_code == 422
    )
    assert client.get("/api/v1/knowledge/999999", headers=li).status_code == 404
    assert client.get(f"/api/v1/knowledge/{2**40}", headers=li).status_code == 422
    assert client.get("/api/v1/knowledge", params={"q": "噪\x00"}, headers=li).status_code == 422
    assert (
        client.post("/api/v1/knowledge", json={**ARTICLES[0], "body": "a\x00"}, headers=boss).status_code
        == 422
    )
    assert client.delete(f"/api/v1/knowledge/{kb['住房公积金提取条件']}", headers=boss).status_code == 204
    assert _titles(client, li, "公积金") == []
    assert client.get("/api/v1/knowledge", params={"q": "x"}).status_code == 401
