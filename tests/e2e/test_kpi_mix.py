"""A known mix of calls on the real Asterisk; metrics, wallboard and report must all say what it implies.

The mix: one call answered at once, one answered after waiting 20 s, one abandoned after about 5 s (a
short abandon: the threshold is 10 s here, and short abandons are excluded), one abandoned after
about 30 s. With N = 15 s that is: offered 3, answered 2 (1 within 15 s), abandoned 1, short abandons
1; connection rate 2/3, 15-second rate 1/3, abandonment rate 1/3, acceptance 100%.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools.local_asterisk import LocalAsterisk, cli
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "e2e-metrics-token-not-a-secret"
FAST, SLOW, SHORT, LONG = "13800138101", "13800138102", "13800138103", "13800138104"
T = TypeVar("T")


@pytest.fixture(scope="module")
def service(
    local_asterisk: LocalAsterisk, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HotlineService]:
    workdir = tmp_path_factory.mktemp("kpi-mix")
    cli("channel request hangup all")
    with database("sqlite", workdir) as url:
        svc = HotlineService(
            local_asterisk, url, workdir,
            ring_timeout="8", kpi_short_abandon_seconds="10", kpi_exclude_short_abandons="true",
            metrics_token=METRICS_TOKEN, wallboard_channel=f"hotline:e2e:{workdir.name}", timezone="UTC",
        )  # fmt: skip
        svc.create_users(["1001"])
        svc.start()
        try:
            yield svc
        finally:
            svc.stop()


@pytest.fixture(scope="module")
def mix(service: HotlineService, local_asterisk: LocalAsterisk) -> Iterator[dict[str, Any]]:
    """Place the mix once; the tests read what the service made of it."""
    started = datetime.now(UTC)
    with ExitStack() as stack:
        sup = stack.enter_context(service.client("sup"))
        agent = stack.enter_context(service.client("agent1001"))
        stack.enter_context(
            AgentPhone("agent1", local_asterisk.agents["agent1"], "127.0.0.3", ring_seconds=0.3)
        )

        def waiting_call(caller: str) -> dict[str, Any] | None:
            for queue in sup.get("/api/v1/queues").json():
                for call in queue["calls"]:
                    if call["caller_number"] == caller:
                        return call
            return None

        assert agent.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}).status_code == 200
        # 1. answered at once
        assert agent.post("/api/v1/agents/1001/ready").status_code == 200
        fast = place_call(FAST, hangup_after=6, max_seconds=30)
        assert fast.wait(30).answered
        assert agent.post("/api/v1/agents/1001/logout").status_code == 200
        wait_until(lambda: agent.get("/api/v1/agents/1001").json()["state"] == "logged_out", 10, "logout")

        # 2-4. nobody ready: one waits 20 s for an agent, one gives up after ~5 s, one after ~30 s
        slow = place_call(SLOW, hangup_after=34, max_seconds=60)
        wait_until(lambda: waiting_call(SLOW), 10, "the slow call waiting")
        short = place_call(SHORT, hangup_after=5, max_seconds=30)
        long = place_call(LONG, hangup_after=31, max_seconds=60)
        wait_until(lambda: (c := waiting_call(SLOW)) and c["wait_seconds"] >= 20, 30, "20 s of waiting")
        assert agent.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}).status_code == 200
        assert agent.post("/api/v1/agents/1001/ready").status_code == 200
        wait_until(lambda: agent.get("/api/v1/agents/1001").json()["state"] == "on_call", 10, "slow answered")
        # no more calls for this agent after this one: the long caller must give up
        assert agent.post("/api/v1/agents/1001/busy", json={"reason": "paperwork"}).status_code == 200
        results = {c: call.wait(60) for c, call in ((SHORT, short), (LONG, long), (SLOW, slow))}
        assert results[SLOW].answered and results[SLOW].completed, results[SLOW].log
        calls = wait_until(
            lambda: [
                c for c in sup.get("/api/v1/calls", params={"limit": 50}).json()["items"] if c["ended_at"]
            ],
            15,
            "all four calls ended",
        )
        assert len(calls) == 4, calls
        yield {"started": started, "calls": {c["caller_number"]: c for c in calls}}


def _seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def test_the_mix_is_what_it_should_be(mix: dict[str, Any]) -> None:
    calls = mix["calls"]
    assert {n: c["outcome"] for n, c in calls.items()} == {
        FAST: "answered", SLOW: "answered", SHORT: "abandoned", LONG: "abandoned",
    }  # fmt: skip
    assert _seconds(calls[FAST]["enqueued_at"], calls[FAST]["answered_at"]) < 15
    assert _seconds(calls[SLOW]["enqueued_at"], calls[SLOW]["answered_at"]) >= 20
    assert _seconds(calls[SHORT]["enqueued_at"], calls[SHORT]["ended_at"]) < 10
    assert _seconds(calls[LONG]["enqueued_at"], calls[LONG]["ended_at"]) >= 25


EXPECTED = {
    "offered": 3, "answered": 2, "answered_in_service_level": 1, "abandoned": 1, "short_abandoned": 1,
    "tickets_opened": 2,
}  # fmt: skip
RATES = {
    "connection_rate": 2 / 3,
    "service_level_rate": 1 / 3,
    "abandonment_rate": 1 / 3,
    # Appeals accepted or answered directly / answered calls less not-an-appeal: nobody submits the two
    # answered calls' work orders here, so none is accepted yet (no longer 100 % by construction).
    "acceptance_rate": 0,
}


def _metrics(service: HotlineService) -> dict[str, float]:
    response = httpx.get(
        f"{service.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200
    values = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.labels.get("queue") in (None, "general") and "le" not in sample.labels:
                key = sample.name + "".join(
                    f",{k}={v}" for k, v in sorted(sample.labels.items()) if k != "queue"
                )
                values[key] = sample.value
    return values


def test_metrics_report_and_wallboard_agree_with_the_mix(
    mix: dict[str, Any], service: HotlineService
) -> None:
    m = _metrics(service)
    from_metrics = {
        "offered": m["hotline_calls_offered_total"],
        "answered": m["hotline_calls_answered_total"],
        "answered_in_service_level": m["hotline_calls_answered_in_service_level_total"],
        "abandoned": m["hotline_calls_abandoned_total"],
        "short_abandoned": m["hotline_calls_short_abandoned_total"],
        "tickets_opened": m["hotline_tickets_opened_total"],
    }
    assert from_metrics == EXPECTED
    asa = (
        m["hotline_call_wait_seconds_sum,outcome=answered"]
        / m["hotline_call_wait_seconds_count,outcome=answered"]
    )
    aht = m["hotline_call_talk_seconds_sum"] / m["hotline_call_talk_seconds_count"]
    assert m["hotline_ami_up"] == 1

    with service.client("sup") as sup:
        period = {
            "from": (mix["started"] - timedelta(hours=1)).isoformat(),
            "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            "interval": "hour",
        }
        report = sup.get("/api/v1/reports/kpi", params=period).json()["total"]
        board = wait_until(
            lambda: (b := sup.get("/api/v1/wallboard").json())["kpis"] and b["kpis"]["offered"] == 3 and b,
            10,
            "today's KPIs on the wallboard",
        )
        csv_total = sup.get("/api/v1/reports/kpi", params={**period, "format": "csv"}).text.splitlines()[-1]
    for source in (report, board["kpis"]):
        assert {k: source[k] for k in EXPECTED} == EXPECTED
        for rate, value in RATES.items():
            assert source[rate] == pytest.approx(value)
        assert source["asa_seconds"] == pytest.approx(asa, abs=1e-3)
        assert source["aht_seconds"] == pytest.approx(aht, abs=1e-3)
    assert board["targets"]["connection_rate"]["met"] is False
    assert csv_total.split(",")[2:5] == ["3", "2", "1"]
    assert all(q["calls_waiting"] == 0 for q in board["queues"])
