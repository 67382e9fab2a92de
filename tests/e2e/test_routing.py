"""Routing rules on the real Asterisk: priority, wrap-up, overflow after max wait, announcements,
and Asterisk's own app_queue as the safety net while the service is away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from devtools.local_asterisk import LocalAsterisk, cli
from tests.e2e.ami_raw import RawAmi, event_is
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call
from tests.e2e.test_call_flow import calls_for, tickets_for
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

AGENT, ENDPOINT, PHONE_IP = "1006", "agent6", "127.0.0.8"


def queues_file(directory: Path, **general: str) -> Path:
    lines = ["[[queue]]", 'name = "general"', *(f"{k} = {v}" for k, v in general.items())]
    path = directory / "queues.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def make_service(local_asterisk: LocalAsterisk, tmp_path: Path) -> Iterator:
    cli("channel request hangup all")
    services: list[HotlineService] = []
    with ExitStack() as stack:

        def factory(**general: str) -> HotlineService:
            url = stack.enter_context(database("sqlite", tmp_path))
            path = queues_file(tmp_path, **general)
            svc = HotlineService(local_asterisk, url, tmp_path, queues_file=str(path))
            svc.create_users([AGENT])
            svc.start()
            services.append(svc)
            return svc

        yield factory
        for svc in services:
            svc.stop()


def sit(
    stack: ExitStack, svc: HotlineService, asterisk: LocalAsterisk, **phone: object
) -> tuple[AgentPhone, httpx.Client]:
    phone_ = stack.enter_context(AgentPhone(ENDPOINT, asterisk.agents[ENDPOINT], PHONE_IP, **phone))
    client = stack.enter_context(svc.client(f"agent{AGENT}"))
    client.post(f"/api/v1/agents/{AGENT}/login", json={"endpoint": ENDPOINT}).raise_for_status()
    return phone_, client


async def test_urgent_line_is_served_before_an_earlier_ordinary_call(
    make_service, local_asterisk: LocalAsterisk
) -> None:
    svc = make_service(ring_timeout=5)
    ordinary, urgent = "13800138301", "13800138302"
    with ExitStack() as stack, svc.client("sup") as sup:
        phone, agent = sit(stack, svc, local_asterisk)
        call_1 = place_call(ordinary, hangup_after=14, max_seconds=40)
        await asyncio.sleep(1.0)
        call_2 = place_call(urgent, number="12319", hangup_after=7, max_seconds=40)
        wait_until(lambda: sup.get("/api/v1/queues/general").json()["calls_waiting"] == 2, 10, "two waiting")
        waiting = sup.get("/api/v1/queues/general").json()["calls"]
        assert [c["caller_number"] for c in waiting] == [urgent, ordinary], [
            (c["caller_number"], c["priority"]) for c in waiting
        ]
        assert [c["priority"] for c in waiting] == [5, 0]
        agent.post(f"/api/v1/agents/{AGENT}/ready").raise_for_status()
        results = await asyncio.gather(asyncio.to_thread(call_1.wait, 40), asyncio.to_thread(call_2.wait, 40))
        assert all(r.answered and r.completed for r in results), [r.log for r in results]
        await asyncio.to_thread(phone.wait_for, "INVITE", 5, count=2)
        assert [i.caller_number for i in phone.invites_seen()] == [urgent, ordinary]


async def test_wrap_up_holds_the_next_call_until_it_ends(make_service, local_asterisk: LocalAsterisk) -> None:
    wrap_up = 4
    svc = make_service(wrap_up=str(wrap_up))
    first, second = "13800138311", "13800138312"
    with ExitStack() as stack, svc.client("sup") as sup:
        _, agent = sit(stack, svc, local_asterisk)
        agent.post(f"/api/v1/agents/{AGENT}/ready").raise_for_status()
        call_1 = place_call(first, hangup_after=4, max_seconds=30)
        assert (await asyncio.to_thread(call_1.wait, 30)).completed
        wait_until(lambda: agent.get(f"/api/v1/agents/{AGENT}").json()["state"] == "wrap_up", 5, "wrap-up")
        call_2 = place_call(second, hangup_after=12, max_seconds=30)
        assert (await asyncio.to_thread(call_2.wait, 30)).completed
        [t1] = tickets_for(sup, first)
        [t2] = wait_until(lambda: tickets_for(sup, second), 10, "second ticket")
        gap = _ts(t2["answered_at"]) - _ts(t1["ended_at"])
        assert gap >= wrap_up - 0.5, gap


async def test_call_waiting_past_max_wait_overflows_to_its_destination(make_service) -> None:
    svc = make_service(max_wait="4", overflow='"message:vm-goodbye"')
    caller = "13800138321"
    with svc.client("sup") as sup:
        call = place_call(caller, max_seconds=30)  # stays until the hotline hangs up
        result = await asyncio.to_thread(call.wait, 30)
        assert result.answered and result.hung_up_by == "remote", result.log
        [record] = wait_until(lambda: calls_for(sup, caller), 10, "call record")
        assert (record["outcome"], record["overflow_to"], record["overflow_reason"]) == (
            "overflowed",
            "message:vm-goodbye",
            "max_wait",
        )
        waited = _ts(record["ended_at"]) - _ts(record["enqueued_at"])
        assert 4 <= waited < 8, waited
        assert tickets_for(sup, caller) == []


async def test_waiting_callers_hear_their_position_and_wait(
    make_service, local_asterisk: LocalAsterisk
) -> None:
    make_service(announce_every="3")
    ami = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
    try:
        await ami.login(local_asterisk.ami_username, local_asterisk.ami_secret)
        call = place_call("13800138331", hangup_after=12, max_seconds=30)
        announced = await ami.wait_event(event_is("UserEvent", UserEvent="AcdAnnounced"), 15)
        assert announced["Position"] == "1"
        assert announced["CallerIDNum"] == "13800138331"
        assert announced["Estimate"] == ""  # no agent serves the queue: no estimate is promised
        result = await asyncio.to_thread(call.wait, 30)
        assert result.answered and result.hung_up_by == "caller"  # it went on waiting after the announcement
    finally:
        await ami.close()


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


FALLBACK_AFTER = 30  # HOTLINE_FALLBACK_AFTER, rendered into the dialplan by `hotline asterisk up`


async def test_app_queue_answers_while_the_service_is_away_and_the_ticket_follows(
    local_asterisk: LocalAsterisk, tmp_path: Path
) -> None:
    cli("channel request hangup all")
    caller = "13800138341"
    with database("sqlite", tmp_path) as url:
        svc = HotlineService(local_asterisk, url, tmp_path)
        svc.create_users([])
        with AgentPhone("agent7", local_asterisk.agents["agent7"], "127.0.0.9", max_seconds=120) as phone:
            call = place_call(caller, hangup_after=FALLBACK_AFTER + 25, max_seconds=120)
            # nobody sends the heartbeat: after the fallback delay Asterisk's app_queue rings the phones
            await asyncio.to_thread(phone.wait_for, "ANSWERED", FALLBACK_AFTER + 20)
            assert [i.caller_number for i in phone.invites_seen()] == [caller]
            svc.start()  # the service comes back while the citizen talks to the agent
            try:
                with svc.client("sup") as sup:
                    [ticket] = wait_until(
                        lambda: tickets_for(sup, caller), 15, "ticket for the fallback call"
                    )
                    assert ticket["agent_id"] == "phone:agent7"
                    assert sup.get("/api/v1/queues/general").json()["calls_waiting"] == 0  # not offered again
                    result = await asyncio.to_thread(call.wait, 60)
                    assert result.answered and result.completed, result.log
            finally:
                svc.stop()


async def test_callers_in_the_fallback_queue_are_taken_back_when_the_service_returns(
    local_asterisk: LocalAsterisk, tmp_path: Path
) -> None:
    cli("channel request hangup all")
    caller = "13800138351"
    with database("sqlite", tmp_path) as url:
        svc = HotlineService(local_asterisk, url, tmp_path)
        svc.create_users(["1008"])
        ami = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
        try:
            await ami.login(local_asterisk.ami_username, local_asterisk.ami_secret)
            call = place_call(caller, hangup_after=FALLBACK_AFTER + 30, max_seconds=120)
            waiting = await ami.wait_event(
                event_is("UserEvent", UserEvent="AcdCallWaiting", CallerIDNum=caller), 10
            )
            await ami.wait_event(event_is("UserEvent", UserEvent="AcdFallback"), FALLBACK_AFTER + 10)
        finally:
            await ami.close()
        svc.start()
        try:
            with (
                svc.client("sup") as sup,
                AgentPhone("agent8", local_asterisk.agents["agent8"], "127.0.0.10") as phone,
                svc.client("agent1008") as agent,
            ):
                [back] = wait_until(
                    lambda: sup.get("/api/v1/queues/general").json()["calls"], 10, "reclaimed"
                )
                assert back["enqueued_at"] == pytest.approx(float(waiting["Enqueued"]), abs=0.001)
                agent.post("/api/v1/agents/1008/login", json={"endpoint": "agent8"}).raise_for_status()
                agent.post("/api/v1/agents/1008/ready").raise_for_status()
                await asyncio.to_thread(phone.wait_for, "ANSWERED", 10)
                [ticket] = wait_until(lambda: tickets_for(sup, caller), 10, "ticket")
                assert ticket["agent_id"] == "1008"
                call.kill()
                agent.post("/api/v1/agents/1008/logout")
        finally:
            svc.stop()
