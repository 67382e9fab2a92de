"""Why an agent's phone did not take an offer, as the real Asterisk reports it, and what the service
makes of it: a busy phone only delays its agent, a withdrawn offer is no failure of the phone, and no
new offer crosses the CANCEL of the previous one (issue 9, item 5).

Real Asterisk 22, sipp phones that answer 486 / 603, ring out, or are not registered at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from acd import events as ev
from app.services import telephony
from devtools.local_asterisk import LocalAsterisk, cli
from tests.e2e.ami_raw import Message, RawAmi, event_is
from tests.e2e.service import HotlineService, database
from tests.e2e.sipp import AgentPhone, place_call
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

RING_TIMEOUT = 6


@pytest.fixture
async def ami(local_asterisk: LocalAsterisk) -> AsyncIterator[RawAmi]:
    client = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
    reply = await client.login(local_asterisk.ami_username, local_asterisk.ami_secret)
    assert reply["Response"] == "Success", reply
    yield client
    await client.close()


async def _originate(ami: RawAmi, endpoint: str, timeout_ms: int) -> str:
    """An agent leg the way the service sends it (no caller needed: it is never answered)."""
    uid = f"acd-probe-{uuid.uuid4().hex[:10]}"
    reply = await ami.action(
        "Originate",
        ("Channel", f"PJSIP/{endpoint}"),
        ("Context", "acd-agent"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("CallerID", '"13800138999" <13800138999>'),
        ("Variable", "ACD_CALLER=PJSIP/nobody"),
        ("ChannelId", uid),
        ("Timeout", str(timeout_ms)),
        ("Async", "true"),
    )
    assert reply[0]["Response"] == "Success", reply
    return uid


async def _outcome(ami: RawAmi, uid: str, leg_expected: bool) -> tuple[str, str | None]:
    """(OriginateResponse Reason, the leg's Hangup Cause or None when no leg was created)."""
    response = await ami.wait_event(event_is("OriginateResponse", Uniqueid=uid), 15)
    assert response["Response"] == "Failure", response
    cause = None
    if leg_expected:
        cause = (await ami.wait_event(event_is("Hangup", Uniqueid=uid), 5))["Cause"]
    else:
        await asyncio.sleep(1.0)
        leg_events = [
            e for e in ami.events if e.get("Uniqueid") == uid and e.get("Event") != "OriginateResponse"
        ]
        assert leg_events == []
    return response["Reason"], cause


@pytest.mark.parametrize(
    ("phone", "reason", "cause", "failure"),
    [
        ({"refuse": 486}, "0", "17", ev.OfferFailure.BUSY),
        ({"refuse": 603}, "0", "21", ev.OfferFailure.REJECTED),
        ({"answer": False}, "3", "19", ev.OfferFailure.NO_ANSWER),
        (None, "0", None, ev.OfferFailure.UNREACHABLE),  # not registered: no leg at all
    ],
    ids=["busy-486", "decline-603", "no-answer", "unregistered"],
)
async def test_what_asterisk_reports_and_what_it_means(
    ami: RawAmi,
    local_asterisk: LocalAsterisk,
    phone: dict | None,
    reason: str,
    cause: str | None,
    failure: ev.OfferFailure,
) -> None:
    async with asyncio.timeout(40):
        if phone is None:
            uid = await _originate(ami, "agent9", 3000)
            seen = await _outcome(ami, uid, leg_expected=False)
        else:
            with AgentPhone(
                "agent2",
                local_asterisk.agents["agent2"],
                "127.0.0.4",
                ring_seconds=0.3,
                max_seconds=30,
                **phone,
            ):
                uid = await _originate(ami, "agent2", 3000)
                seen = await _outcome(ami, uid, leg_expected=True)
    assert seen == (reason, cause)
    assert telephony.offer_failure(*seen) is failure


# -- the service ------------------------------------------------------------------------------------

AGENTS = {"1001": ("agent1", "127.0.0.3"), "1002": ("agent2", "127.0.0.4")}


@pytest.fixture
def service(local_asterisk: LocalAsterisk, tmp_path: Path) -> Iterator[HotlineService]:
    cli("channel request hangup all")
    queues = tmp_path / "queues.toml"
    queues.write_text(
        f'[[queue]]\nname = "general"\nring_timeout = {RING_TIMEOUT}\nbusy_delay = 30\nreject_delay = 30\n'
    )
    with database("sqlite", tmp_path) as url:
        svc = HotlineService(local_asterisk, url, tmp_path, queues_file=str(queues))
        svc.create_users(list(AGENTS))
        svc.start()
        try:
            yield svc
        finally:
            svc.stop()


def _sit(stack: ExitStack, svc: HotlineService, asterisk: LocalAsterisk, agent_id: str, **phone: object):
    endpoint, ip = AGENTS[agent_id]
    sipp = stack.enter_context(AgentPhone(endpoint, asterisk.agents[endpoint], ip, max_seconds=60, **phone))
    client = stack.enter_context(svc.client(f"agent{agent_id}"))
    client.post(f"/api/v1/agents/{agent_id}/login", json={"endpoint": endpoint}).raise_for_status()
    client.post(f"/api/v1/agents/{agent_id}/ready").raise_for_status()
    return sipp, client


async def test_a_busy_phone_only_delays_its_agent(
    service: HotlineService, local_asterisk: LocalAsterisk
) -> None:
    with ExitStack() as stack, service.client("sup") as sup:
        busy, _ = _sit(stack, service, local_asterisk, "1001", refuse=486, ring_seconds=0.2)
        await asyncio.sleep(0.3)
        answering, _ = _sit(stack, service, local_asterisk, "1002", ring_seconds=0.3)
        caller = "13800138501"
        call = place_call(caller, hangup_after=3, max_seconds=30)
        result = await asyncio.to_thread(call.wait, 30)
        assert result.answered and result.completed, result.log + result.errors
        assert busy.count("REFUSED") == 1 and answering.count("ANSWERED") == 1
        first = sup.get("/api/v1/agents/1001").json()
        # README: "A busy or rejecting phone only delays that agent's next offer."
        assert (first["state"], first["reason"]) == ("ready", ""), first
        log = service.log()
        assert "failed: busy" in log and "unreachable" not in log, log[-3000:]


async def test_a_withdrawn_offer_is_no_failure_and_the_next_waits_for_its_hangup(
    service: HotlineService, local_asterisk: LocalAsterisk, ami: RawAmi
) -> None:
    with ExitStack() as stack, service.client("sup") as sup:
        phone, _ = _sit(stack, service, local_asterisk, "1001", answer=False)
        leaving, staying = "13800138502", "13800138503"
        start = len(ami.events)
        # The first caller hangs up while agent1 rings (offered at ~1.5 s, ringing for 6 s); the
        # second is already waiting then, so the service offers it at once: to agent1 only once
        # Asterisk reported the first leg's Hangup.
        first = place_call(leaving, hangup_after=4, max_seconds=30)
        await asyncio.sleep(0.5)
        second = place_call(staying, hangup_after=RING_TIMEOUT + 6, max_seconds=40)
        await asyncio.to_thread(first.wait, 30)
        await asyncio.to_thread(phone.wait_for, "INVITE", 10, count=2)
        legs: list[Message] = [
            e
            for e in ami.events[start:]
            if e.get("Event") in ("Newchannel", "Hangup") and e.get("Channel", "").startswith("PJSIP/agent1-")
        ]
        order = [(e["Event"], e["Uniqueid"]) for e in legs]
        first_leg = order[0][1]
        # the old leg's Hangup comes before the new leg exists
        assert order[:3] == [("Newchannel", first_leg), ("Hangup", first_leg), ("Newchannel", order[2][1])], (
            order
        )
        gap = float(legs[2]["Timestamp"]) - float(legs[1]["Timestamp"])
        assert gap > 0, order
        assert [i.caller_number for i in phone.invites_seen()] == [leaving, staying]
        second.kill()
        agent = sup.get("/api/v1/agents/1001").json()
        assert agent["reason"] != "missed_call", agent
        log = service.log()
        assert "withdrawn" in log and "unreachable" not in log, log[-3000:]


def test_the_service_rebuilds_the_phones_after_login(service: HotlineService) -> None:
    """FullyBooted comes in the same read as the Login response: the rebuild must find the link up."""
    wait_until(
        lambda: "phones rebuilt from DeviceStateList" in service.log(), 15, "the DeviceStateList rebuild"
    )
    assert "DeviceStateList failed" not in service.log()
