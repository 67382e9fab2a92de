"""A citizen's call end to end: real Asterisk, the service's ACD, sipp phones, tickets in the database.

The service runs as a real process (``hotline run``) against the local Asterisk; citizens and agent
phones are sipp processes on their own loopback addresses. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TypeVar

import httpx
import pytest

from devtools.local_asterisk import LocalAsterisk, cli
from tests.e2e.ami_raw import RawAmi
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

AGENTS = {"1001": "agent1", "1002": "agent2", "1003": "agent3"}
RING_TIMEOUT = 4
T = TypeVar("T")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, local_asterisk: LocalAsterisk, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HotlineService]:
    workdir = tmp_path_factory.mktemp(f"service-{request.param}")
    cli("channel request hangup all")  # no caller left over from earlier tests
    with database(request.param, workdir) as url:
        svc = HotlineService(local_asterisk, url, workdir, ring_timeout=str(RING_TIMEOUT))
        svc.create_users(list(AGENTS))
        svc.start()
        try:
            yield svc
        finally:
            svc.stop()


@pytest.fixture
def supervisor(service: HotlineService) -> Iterator[httpx.Client]:
    with service.client("sup") as client:
        yield client
        # leave the service as found: every agent logged out, nobody waiting
        for agent_id in AGENTS:
            client.post(f"/api/v1/agents/{agent_id}/logout")
        wait_until(
            lambda: all(q["calls_waiting"] == 0 for q in client.get("/api/v1/queues").json()), 15, "idle"
        )


class Phones:
    """Agent phones (sipp) registered for a test, and the agents logged in at them."""

    def __init__(self, asterisk: LocalAsterisk, service: HotlineService, stack: ExitStack) -> None:
        self.asterisk, self.service, self.stack = asterisk, service, stack

    def sit(
        self, agent_id: str, *, answer: bool = True, ring_seconds: float = 0.5, ready: bool = True
    ) -> AgentPhone:
        endpoint = AGENTS[agent_id]
        ip = f"127.0.0.{2 + int(endpoint.removeprefix('agent'))}"
        phone = AgentPhone(
            endpoint, self.asterisk.agents[endpoint], ip, answer=answer, ring_seconds=ring_seconds
        )
        self.stack.enter_context(phone)
        client = self.stack.enter_context(self.service.client(f"agent{agent_id}"))
        assert client.post(f"/api/v1/agents/{agent_id}/login", json={"endpoint": endpoint}).status_code == 200
        if ready:
            # "ringing" at once when a call is already waiting
            assert client.post(f"/api/v1/agents/{agent_id}/ready").json()["state"] in ("ready", "ringing")
        return phone


@pytest.fixture
def phones(
    local_asterisk: LocalAsterisk, service: HotlineService, supervisor: httpx.Client
) -> Iterator[Phones]:
    with ExitStack() as stack:
        yield Phones(local_asterisk, service, stack)


def tickets_for(client: httpx.Client, caller: str) -> list[dict]:
    response = client.get("/api/v1/tickets", params={"caller": caller})
    assert response.status_code == 200, response.text
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


def calls_for(client: httpx.Client, caller: str) -> list[dict]:
    response = client.get("/api/v1/calls", params={"limit": 200})
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"] if isinstance(body, dict) else body
    return [c for c in items if c["caller_number"] == caller]


async def test_answered_call_is_bridged_to_the_chosen_agent_and_opens_one_ticket(
    local_asterisk: LocalAsterisk, phones: Phones, supervisor: httpx.Client
) -> None:
    ami = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
    try:
        # the observer user sees BridgeEnter, which the service's user does not get (eventfilter)
        assert (await ami.login(local_asterisk.observer_username, local_asterisk.ami_secret))[
            "Response"
        ] == "Success"
        phone = phones.sit("1001")
        caller = "13800138001"
        call = place_call(caller, hangup_after=6, max_seconds=30)
        result = await asyncio.to_thread(call.wait, 30)
        assert result.answered and result.completed, result.log + result.errors

        # the agent's phone rang showing the citizen's number
        await asyncio.to_thread(phone.wait_for, "INVITE", 5)
        assert [i.caller_number for i in phone.invites_seen()] == [caller]
        # Asterisk bridged the citizen's channel with agent1's channel
        enters = [e for e in ami.events if e.get("Event") == "BridgeEnter"]
        citizen = [e for e in enters if e.get("CallerIDNum") == caller and "citizens" in e.get("Channel", "")]
        agent = [e for e in enters if e.get("Channel", "").startswith("PJSIP/agent1-")]
        assert citizen and agent, enters
        assert citizen[0]["BridgeUniqueid"] == agent[0]["BridgeUniqueid"]
    finally:
        await ami.close()

    tickets = wait_until(
        lambda: [t for t in tickets_for(supervisor, caller) if t["ended_at"]], 10, "ticket end"
    )
    assert len(tickets) == 1
    ticket = tickets[0]
    assert (ticket["caller_number"], ticket["agent_id"], ticket["queue"]) == (caller, "1001", "general")
    assert ticket["enqueued_at"] <= ticket["answered_at"] <= ticket["ended_at"]
    [record] = calls_for(supervisor, caller)
    assert record["outcome"] == "answered" and record["agent_id"] == "1001"
    # the agent is ready again and can read its own ticket
    with phones.service.client("agent1001") as own:
        assert own.get("/api/v1/agents/1001").json()["state"] == "ready"
        assert own.get(f"/api/v1/tickets/{ticket['id']}").status_code == 200


async def test_unanswered_phone_passes_the_call_to_the_next_agent(
    phones: Phones, supervisor: httpx.Client
) -> None:
    silent = phones.sit("1001", answer=False)  # ready first: idle longest, offered first
    await asyncio.sleep(0.2)
    answering = phones.sit("1002")
    caller = "13800138002"
    call = place_call(caller, hangup_after=RING_TIMEOUT + 5, max_seconds=40)
    result = await asyncio.to_thread(call.wait, 40)
    assert result.answered and result.completed, result.log + result.errors

    await asyncio.to_thread(silent.wait_for, "INVITE", 5)
    await asyncio.to_thread(answering.wait_for, "INVITE", 5)
    assert [i.caller_number for i in silent.invites_seen()] == [caller]
    assert [i.caller_number for i in answering.invites_seen()] == [caller]
    [ticket] = wait_until(lambda: tickets_for(supervisor, caller), 10, "ticket")
    assert ticket["agent_id"] == "1002"
    first = supervisor.get("/api/v1/agents/1001").json()
    assert (first["state"], first["reason"]) == ("not_ready", "missed_call")
    waited = _seconds(ticket["answered_at"]) - _seconds(ticket["enqueued_at"])
    assert waited >= RING_TIMEOUT  # the first phone really rang out before the second got the call


async def test_caller_hanging_up_while_waiting_is_abandoned_without_a_ticket(
    phones: Phones, supervisor: httpx.Client
) -> None:
    caller = "13800138003"
    call = place_call(caller, hangup_after=5, max_seconds=20)  # nobody is ready: it waits, then gives up
    wait_until(
        lambda: any(q["calls_waiting"] for q in supervisor.get("/api/v1/queues").json()), 10, "call waiting"
    )
    result = await asyncio.to_thread(call.wait, 20)
    assert result.answered  # the hotline answered (greeting, music); no agent ever took it
    [record] = wait_until(
        lambda: [c for c in calls_for(supervisor, caller) if c["outcome"] == "abandoned"], 10, "abandoned"
    )
    assert record["agent_id"] is None and record["ended_at"]
    assert tickets_for(supervisor, caller) == []


async def test_two_callers_one_agent_are_served_in_arrival_order(
    phones: Phones, supervisor: httpx.Client
) -> None:
    first, second = "13800138011", "13800138012"
    call_1 = place_call(first, hangup_after=5, max_seconds=40)
    await asyncio.sleep(1.0)
    call_2 = place_call(second, hangup_after=12, max_seconds=40)
    wait_until(
        lambda: sum(q["calls_waiting"] for q in supervisor.get("/api/v1/queues").json()) == 2,
        10,
        "two waiting",
    )
    phone = phones.sit("1003")
    results = await asyncio.gather(asyncio.to_thread(call_1.wait, 40), asyncio.to_thread(call_2.wait, 40))
    assert all(r.answered and r.completed for r in results), [r.log for r in results]
    await asyncio.to_thread(phone.wait_for, "INVITE", 5, count=2)
    assert [i.caller_number for i in phone.invites_seen()] == [first, second]
    [t1] = tickets_for(supervisor, first)
    [t2] = wait_until(lambda: tickets_for(supervisor, second), 10, "second ticket")
    assert t1["agent_id"] == t2["agent_id"] == "1003"
    assert _seconds(t1["answered_at"]) < _seconds(t2["answered_at"])


def _seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_service_log_has_no_secret(service: HotlineService, local_asterisk: LocalAsterisk) -> None:
    assert local_asterisk.ami_secret not in service.log()
    assert service.env["HOTLINE_JWT_SECRET"] not in service.log()


def test_agent_endpoints_refuse_bad_input_and_other_agents(
    service: HotlineService, supervisor: httpx.Client
) -> None:
    with service.client("agent1001") as alice:
        # an agent acts only on itself
        other = alice.post("/api/v1/agents/1002/login", json={"endpoint": "agent2"})
        assert other.status_code == 403 and "own" in other.json()["detail"]
        assert alice.get("/api/v1/agents/1002").status_code == 403
        assert [a["id"] for a in alice.get("/api/v1/agents").json()] == ["1001"]
        # invalid payloads: 422 with the reason
        bad = alice.post("/api/v1/agents/1001/login", json={"endpoint": "agent1; DROP"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "endpoint"
        assert alice.post("/api/v1/agents/1001/login", json={}).status_code == 422
        assert alice.post("/api/v1/agents/1001/busy", json={"reason": ""}).status_code == 422
        # state rules: 409 with the reason
        conflict = alice.post("/api/v1/agents/1001/ready")
        assert conflict.status_code == 409 and "not logged in" in conflict.json()["detail"]
        assert alice.post("/api/v1/agents/1001/login", json={"endpoint": "PJSIP/agent1"}).status_code == 200
        busy = alice.post("/api/v1/agents/1001/busy", json={"reason": "training"}).json()
        assert (busy["state"], busy["reason"], busy["endpoint"]) == ("busy", "training", "agent1")
    # one phone, one agent
    taken = supervisor.post("/api/v1/agents/1002/login", json={"endpoint": "agent1"})
    assert taken.status_code == 409 and "1001" in taken.json()["detail"]
    # unknown ids: 404 with the id
    missing = supervisor.get("/api/v1/agents/9999")
    assert missing.status_code == 404 and "9999" in missing.json()["detail"]
    assert supervisor.get("/api/v1/queues/nope").status_code == 404
    # no token: 401
    assert httpx.get(f"{service.base_url}/api/v1/agents").status_code == 401
    assert httpx.get(f"{service.base_url}/api/v1/queues").status_code == 401
