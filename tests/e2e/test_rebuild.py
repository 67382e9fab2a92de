"""A complete rebuild after a crash (issue 15, item 1): the service is SIGKILLed with a call bridged
and with an agent's phone ringing, then restarted. Real Asterisk, real service processes, sipp, and
the tests' unfiltered AMI user watching the agent legs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.local_asterisk import LocalAsterisk, cli
from tests.e2e.ami_raw import RawAmi
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call
from tests.e2e.test_call_flow import tickets_for
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
async def observer(local_asterisk: LocalAsterisk) -> AsyncIterator[RawAmi]:
    cli("channel request hangup all")
    client = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
    reply = await client.login(local_asterisk.observer_username, local_asterisk.ami_secret)
    assert reply["Response"] == "Success", reply
    yield client
    await client.close()


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """wait_until off the event loop, so that the observer keeps reading events meanwhile."""
    return await asyncio.to_thread(wait_until, check, timeout, what)


def agent_legs(ami: RawAmi, event: str) -> list[tuple[float, str]]:
    """(timestamp, uniqueid) of the service's agent legs' Newchannel or Hangup events."""
    return [
        (float(e["Timestamp"]), e["Uniqueid"])
        for e in ami.events
        if e.get("Event") == event and str(e.get("Uniqueid", "")).startswith("acd-")
    ]


def all_legs_gone(ami: RawAmi) -> bool:
    return len(agent_legs(ami, "Hangup")) == len(agent_legs(ami, "Newchannel"))


async def stored_ready(client: Any, agent_id: str) -> None:
    """Until the agent's "ready" is in the database: a transition still queued for writing is lost
    by a SIGKILL (the durable journal of issue 8 is another piece of work), and would not be restored."""
    history = f"/api/v1/compliance/agents/{agent_id}/history"
    await until(lambda: any(t["to_state"] == "ready" for t in client.get(history).json()), 5, "ready stored")


def state(client: Any, agent_id: str) -> str:
    return client.get(f"/api/v1/agents/{agent_id}").json()["state"]


async def test_a_call_bridged_through_a_crash_gets_its_end_and_one_ticket_and_its_agent_stays_on_call(
    local_asterisk: LocalAsterisk, observer: RawAmi, tmp_path: Path
) -> None:
    caller, second_caller = "13800138301", "13800138302"
    with (
        database("postgresql", tmp_path) as url,
        AgentPhone("agent1", local_asterisk.agents["agent1"], "127.0.0.3") as phone1,
        AgentPhone("agent2", local_asterisk.agents["agent2"], "127.0.0.4") as phone2,
    ):
        first = HotlineService(local_asterisk, url, tmp_path)
        first.create_users(["1001", "1002"])
        first.start()
        with first.client("sup") as sup:
            sup.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}).raise_for_status()
            sup.post("/api/v1/agents/1001/ready").raise_for_status()
            call = place_call(caller, hangup_after=14, max_seconds=40)
            await asyncio.to_thread(phone1.wait_for, "ANSWERED", 10)
            await until(lambda: tickets_for(sup, caller), 10, "the ticket of the answered call")
            sup.post("/api/v1/agents/1002/login", json={"endpoint": "agent2"}).raise_for_status()
            sup.post("/api/v1/agents/1002/ready").raise_for_status()
            await stored_ready(sup, "1002")
        first.kill()  # a crash with the call bridged
        await asyncio.sleep(1)

        second = HotlineService(local_asterisk, url, tmp_path)
        started = time.monotonic()
        second.start()
        print(f"restart to ready: {time.monotonic() - started:.2f} s")
        try:
            with second.client("sup") as sup:
                assert state(sup, "1001") == "on_call"  # restored on its call, not ready
                other = place_call(second_caller, hangup_after=8, max_seconds=30)
                await asyncio.to_thread(phone2.wait_for, "ANSWERED", 10)
                assert phone1.count("INVITE") == 1, "the agent on a call was offered a new call"
                assert (await asyncio.to_thread(other.wait, 30)).answered
                result = await asyncio.to_thread(call.wait, 40)
                assert result.answered and result.completed, result.log
                [ticket] = await until(
                    lambda: [t for t in tickets_for(sup, caller) if t["ended_at"]], 10, "the ticket's end"
                )
                assert ticket["agent_id"] == "1001"
                assert len(tickets_for(sup, caller)) == 1
                [record] = [c for c in sup.get("/api/v1/calls", params={"limit": 50}).json()["items"]
                            if c["caller_number"] == caller]  # fmt: skip
                assert record["outcome"] == "answered" and record["ended_at"], record
                await until(lambda: state(sup, "1001") == "ready", 10, "agent 1001 free again")
                for agent_id in ("1001", "1002"):
                    sup.post(f"/api/v1/agents/{agent_id}/logout")
        finally:
            second.stop()
            call.kill()


async def test_a_caller_ringing_at_an_agent_through_a_crash_is_not_rung_at_two_agents(
    local_asterisk: LocalAsterisk, observer: RawAmi, tmp_path: Path
) -> None:
    caller = "13800138303"
    with (
        database("postgresql", tmp_path) as url,
        AgentPhone("agent1", local_asterisk.agents["agent1"], "127.0.0.3") as answering,
        AgentPhone("agent2", local_asterisk.agents["agent2"], "127.0.0.4", answer=False) as ringing,
    ):
        first = HotlineService(local_asterisk, url, tmp_path, ring_timeout="30")
        first.create_users(["1001", "1002"])
        first.start()
        with first.client("sup") as sup:
            sup.post("/api/v1/agents/1002/login", json={"endpoint": "agent2"}).raise_for_status()
            sup.post("/api/v1/agents/1002/ready").raise_for_status()
            call = place_call(caller, hangup_after=20, max_seconds=60)  # from the greeting on
            await asyncio.to_thread(ringing.wait_for, "INVITE", 10)
            sup.post("/api/v1/agents/1001/login", json={"endpoint": "agent1"}).raise_for_status()
            sup.post("/api/v1/agents/1001/ready").raise_for_status()
            await stored_ready(sup, "1001")
        first.kill()  # a crash while agent2's phone rings for the caller
        [(_, old_leg)] = agent_legs(observer, "Newchannel")

        # A short ring now: should the caller be offered to the silent phone again, it moves on soon.
        second = HotlineService(local_asterisk, url, tmp_path, ring_timeout="5")
        second.start()
        try:
            with second.client("sup") as sup:
                await asyncio.to_thread(answering.wait_for, "ANSWERED", 20)
                result = await asyncio.to_thread(call.wait, 45)
                assert result.answered and result.completed, result.log
                await asyncio.to_thread(ringing.wait_for, "CANCELLED", 5)  # the old leg was cancelled
                await until(lambda: all_legs_gone(observer), 10, "every agent leg gone")
                ends = {uid: at for at, uid in agent_legs(observer, "Hangup")}
                legs = sorted((at, ends[uid], uid) for at, uid in agent_legs(observer, "Newchannel"))
                assert len(legs) >= 2 and legs[0][2] == old_leg, legs
                # never two legs at once: each leg was gone before the caller was offered again
                for (_, end, uid), (start, _, next_uid) in itertools.pairwise(legs):
                    assert end <= start, f"{uid} still rang when {next_uid} was offered: {legs}"
                print(f"old leg gone {legs[1][0] - legs[0][1]:.3f} s before the re-offer; legs: {len(legs)}")
                [ticket] = await until(
                    lambda: [t for t in tickets_for(sup, caller) if t["ended_at"]], 10, "ticket"
                )
                assert ticket["agent_id"] == "1001"
                assert len(tickets_for(sup, caller)) == 1
                for agent_id in ("1001", "1002"):
                    sup.post(f"/api/v1/agents/{agent_id}/logout")
        finally:
            second.stop()
            call.kill()


def phone_legs(ami: RawAmi) -> dict[str, list[tuple[float, float]]]:
    """Per agent phone, the (start, end) of every agent leg the service originated to it."""
    ends = {uid: at for at, uid in agent_legs(ami, "Hangup")}
    legs: dict[str, list[tuple[float, float]]] = {}
    for e in ami.events:
        if e.get("Event") == "Newchannel" and str(e.get("Uniqueid", "")).startswith("acd-"):
            phone = str(e["Channel"]).rsplit("-", 1)[0]
            legs.setdefault(phone, []).append((float(e["Timestamp"]), ends.get(e["Uniqueid"], float("inf"))))
    return legs


async def test_a_crash_amid_several_calls_loses_no_end_no_ticket_and_rings_no_phone_twice(
    local_asterisk: LocalAsterisk, observer: RawAmi, tmp_path: Path
) -> None:
    agents = {f"100{i}": f"agent{i}" for i in range(1, 5)}
    callers = [f"1380013840{i}" for i in range(6)]
    with database("postgresql", tmp_path) as url, contextlib.ExitStack() as stack:
        for i, endpoint in enumerate(agents.values()):
            ip = f"127.0.0.{3 + i}"
            stack.enter_context(
                AgentPhone(endpoint, local_asterisk.agents[endpoint], ip, ring_seconds=1.0 + i / 3)
            )
        first = HotlineService(local_asterisk, url, tmp_path)
        first.create_users(list(agents))
        first.start()
        with first.client("sup") as sup:
            for agent_id, endpoint in agents.items():
                sup.post(f"/api/v1/agents/{agent_id}/login", json={"endpoint": endpoint}).raise_for_status()
                sup.post(f"/api/v1/agents/{agent_id}/ready").raise_for_status()
            for agent_id in agents:
                await stored_ready(sup, agent_id)
            calls = []
            for n, number in enumerate(callers):
                calls.append(place_call(number, hangup_after=20 + n, max_seconds=80))
                await asyncio.sleep(0.7)
        first.kill()  # some calls bridged, some legs ringing, some callers waiting
        second = HotlineService(local_asterisk, url, tmp_path)
        second.start()
        try:
            results = [await asyncio.to_thread(c.wait, 80) for c in calls]
            assert all(r.answered and r.completed for r in results), [r.log for r in results]
            with second.client("sup") as sup:
                for number in callers:
                    await until(
                        lambda n=number: [t for t in tickets_for(sup, n) if t["ended_at"]], 10, f"ticket {n}"
                    )
                    assert len(tickets_for(sup, number)) == 1
                records = [c for c in sup.get("/api/v1/calls", params={"limit": 100}).json()["items"]
                           if c["caller_number"] in callers]  # fmt: skip
                assert len(records) == len(callers)
                assert all(r["outcome"] == "answered" and r["ended_at"] for r in records), records
                await until(lambda: all_legs_gone(observer), 10, "every agent leg gone")
                for phone, legs in phone_legs(observer).items():
                    legs.sort()
                    for (_, end), (start, _) in itertools.pairwise(legs):
                        assert end <= start, f"{phone} held two legs at once: {legs}"
                for agent_id in agents:
                    sup.post(f"/api/v1/agents/{agent_id}/logout")
        finally:
            second.stop()
            for c in calls:
                c.kill()
