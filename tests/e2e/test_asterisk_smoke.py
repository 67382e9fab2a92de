"""Smoke tests of the hotline's Asterisk configuration: AMI user, dialplan contract, agent legs.

Real Asterisk 22 (``local_asterisk`` fixture), real SIP (sipp), a raw AMI client. Each test is
bounded in time (``asyncio.timeout`` here, ``max_seconds`` on every sipp process).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator

import pytest

from devtools.local_asterisk import LocalAsterisk

from .ami_raw import AmiError, Message, RawAmi, event_is
from .sipp import AgentPhone, place_call

pytestmark = pytest.mark.e2e

_numbers = itertools.count(1)


def _caller_number() -> str:
    """A caller number unique in this session, so events of other calls never match."""
    return f"1380013{uuid.uuid4().int % 10000:04d}{next(_numbers) % 10}"


@pytest.fixture
async def ami(local_asterisk: LocalAsterisk) -> AsyncIterator[RawAmi]:
    client = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
    reply = await client.login(local_asterisk.ami_username, local_asterisk.ami_secret)
    assert reply["Response"] == "Success", reply
    yield client
    await client.close()


@pytest.fixture
async def observer(local_asterisk: LocalAsterisk) -> AsyncIterator[RawAmi]:
    """The tests' AMI user: the service's privileges without its event filter (BridgeEnter...)."""
    client = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
    reply = await client.login(local_asterisk.observer_username, local_asterisk.ami_secret)
    assert reply["Response"] == "Success", reply
    yield client
    await client.close()


async def _waiting_call(ami: RawAmi, number: str, timeout: float = 10.0) -> Message:
    """The AcdCallWaiting UserEvent of the call from `number`."""
    return await ami.wait_event(
        event_is("UserEvent", UserEvent="AcdCallWaiting", CallerIDNum=number), timeout
    )


async def _originate_agent(ami: RawAmi, endpoint: str, caller: Message, timeout_ms: int) -> str:
    """Originate the agent's phone into s@acd-agent for this caller; returns the agent leg's Uniqueid."""
    agent_uid = f"acd-{uuid.uuid4().hex[:12]}"
    number = caller["CallerIDNum"]
    reply = await ami.action(
        "Originate",
        ("Channel", f"PJSIP/{endpoint}"),
        ("Context", "acd-agent"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("CallerID", f'"{number}" <{number}>'),
        ("Variable", f"ACD_CALLER={caller['Channel']}"),
        ("Variable", f"ACD_CALL_ID={caller['Uniqueid']}"),
        ("ChannelId", agent_uid),
        ("Timeout", str(timeout_ms)),
        ("Async", "true"),
    )
    assert reply[0]["Response"] == "Success", reply
    return agent_uid


async def test_ami_login_with_generated_secret_and_wrong_secret(local_asterisk: LocalAsterisk) -> None:
    async with asyncio.timeout(15):
        good = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
        assert good.banner.startswith("Asterisk Call Manager/")
        assert (await good.login(local_asterisk.ami_username, local_asterisk.ami_secret))[
            "Response"
        ] == "Success"
        # read=system: FullyBooted arrives right after login (what a reconnecting client waits for).
        await good.wait_event(event_is("FullyBooted"), 5)
        assert (await good.action("Ping"))[0]["Response"] == "Success"
        # Not granted: the CLI over AMI.
        denied = await good.action("Command", ("Command", "core show version"))
        assert denied[0]["Response"] == "Error" and "Permission denied" in denied[0].get("Message", "")
        await good.close()

        bad = await RawAmi.connect(local_asterisk.ami_host, local_asterisk.ami_port)
        reply = await bad.login(local_asterisk.ami_username, local_asterisk.ami_secret + "-wrong")
        assert reply["Response"] == "Error", reply
        await bad.close()


async def test_needed_actions_are_allowed(ami: RawAmi, local_asterisk: LocalAsterisk) -> None:
    """Every action the service uses works for the hotline AMI user."""
    async with asyncio.timeout(20):
        with AgentPhone("agent4", local_asterisk.agents["agent4"], "127.0.0.6", max_seconds=30):
            assert (await ami.action("Getvar", ("Variable", "EPOCH")))[0]["Response"] == "Success"
            assert (await ami.action("Setvar", ("Variable", "HOTLINE_TEST"), ("Value", "1")))[0][
                "Response"
            ] == "Success"
            channels = await ami.action("CoreShowChannels")
            assert channels[-1]["Event"] == "CoreShowChannelsComplete"
            states = await ami.action("DeviceStateList")
            assert any(m.get("Device") == "PJSIP/agent4" and m.get("State") == "NOT_INUSE" for m in states), [
                (m.get("Device"), m.get("State")) for m in states
            ]
            # Least privilege: nothing that reads configuration, reloads, or runs commands.
            for action in (("PJSIPShowContacts",), ("GetConfig", ("Filename", "manager.conf")), ("Reload",)):
                [reply] = await ami.action(action[0], *action[1:])
                assert reply["Response"] == "Error" and "Permission denied" in reply.get("Message", ""), reply
            hangup = await ami.action("Hangup", ("Channel", "PJSIP/nobody-00000000"))
            assert "Permission denied" not in hangup[0].get("Message", "")
            # The registration was reported (read=system).
            await ami.wait_event(event_is("ContactStatus", AOR="agent4"), 5)


async def test_citizen_call_announces_itself_waiting_in_general(ami: RawAmi) -> None:
    async with asyncio.timeout(30):
        number = _caller_number()
        call = place_call(number, hangup_after=4, max_seconds=20)
        try:
            event = await _waiting_call(ami, number)
            assert event["Queue"] == "general"
            assert event["CallPriority"] == "0"
            assert float(event["Enqueued"]) > 0 and "." in event["Enqueued"]  # milliseconds
            assert event["Channel"].startswith("PJSIP/citizens-trunk-")
            assert "Timestamp" in event  # timestampevents=yes
            result = await asyncio.to_thread(call.wait, 15)
        finally:
            call.kill()
        assert result.answered and result.completed and result.hung_up_by == "caller", result


async def test_originate_bridges_agent_to_waiting_caller(
    observer: RawAmi, local_asterisk: LocalAsterisk
) -> None:
    ami = observer  # sees BridgeEnter, which the service's user does not get
    async with asyncio.timeout(45):
        number = _caller_number()
        with AgentPhone(
            "agent1", local_asterisk.agents["agent1"], "127.0.0.3", ring_seconds=0.5, max_seconds=40
        ) as phone:
            call = place_call(number, max_seconds=30)  # stays until Asterisk hangs up
            try:
                caller = await _waiting_call(ami, number)
                agent_uid = await _originate_agent(ami, "agent1", caller, timeout_ms=10_000)
                response = await ami.wait_event(event_is("OriginateResponse", Uniqueid=agent_uid), 15)
                assert response["Response"] == "Success", response
                caller_in = await ami.wait_event(event_is("BridgeEnter", Uniqueid=caller["Uniqueid"]), 10)
                agent_in = await ami.wait_event(event_is("BridgeEnter", Uniqueid=agent_uid), 10)
                assert caller_in["BridgeUniqueid"] == agent_in["BridgeUniqueid"]

                # The phone rang showing the citizen's number.
                invites = phone.invites_seen()
                assert invites and invites[-1].caller_number == number, invites

                # The agent hangs up: the caller is hung up too (Bridge option x).
                await ami.action("Hangup", ("Channel", agent_in["Channel"]))
                await ami.wait_event(event_is("Hangup", Uniqueid=caller["Uniqueid"]), 10)
                result = await asyncio.to_thread(call.wait, 10)
            finally:
                call.kill()
            assert result.answered and result.completed and result.hung_up_by == "remote", result


async def test_caller_hangup_ends_agent_leg(observer: RawAmi, local_asterisk: LocalAsterisk) -> None:
    ami = observer  # sees BridgeEnter, which the service's user does not get
    async with asyncio.timeout(45):
        number = _caller_number()
        with AgentPhone(
            "agent3", local_asterisk.agents["agent3"], "127.0.0.5", ring_seconds=0.2, max_seconds=40
        ) as phone:
            call = place_call(number, hangup_after=5, max_seconds=30)
            try:
                caller = await _waiting_call(ami, number)
                agent_uid = await _originate_agent(ami, "agent3", caller, timeout_ms=10_000)
                await ami.wait_event(event_is("BridgeEnter", Uniqueid=agent_uid), 10)
                result = await asyncio.to_thread(call.wait, 15)
                await ami.wait_event(event_is("Hangup", Uniqueid=agent_uid), 10)
                await asyncio.to_thread(phone.wait_for, "BYE", 5)
            finally:
                call.kill()
            assert result.completed and result.hung_up_by == "caller", result


async def test_caller_gone_before_agent_answers(observer: RawAmi, local_asterisk: LocalAsterisk) -> None:
    """The caller hangs up while the agent's phone rings; the agent answers; its leg just ends."""
    ami = observer  # sees BridgeEnter, which the service's user does not get
    async with asyncio.timeout(45):
        number = _caller_number()
        with AgentPhone(
            "agent5", local_asterisk.agents["agent5"], "127.0.0.7", ring_seconds=4, max_seconds=40
        ) as phone:
            call = place_call(number, hangup_after=3, max_seconds=30)  # event at ~1.5 s (greeting)
            try:
                caller = await _waiting_call(ami, number)
                agent_uid = await _originate_agent(ami, "agent5", caller, timeout_ms=10_000)
                result = await asyncio.to_thread(call.wait, 10)
                assert result.hung_up_by == "caller", result
                response = await ami.wait_event(event_is("OriginateResponse", Uniqueid=agent_uid), 15)
                assert response["Response"] == "Success"  # the agent did answer
                await ami.wait_event(event_is("Hangup", Uniqueid=agent_uid), 10)
                await asyncio.to_thread(phone.wait_for, "BYE", 5)
                assert phone.count("ANSWERED") == 1
                assert not any(
                    e.get("Event") == "BridgeEnter" and e.get("Uniqueid") == agent_uid for e in ami.events
                )
            finally:
                call.kill()


async def test_agent_not_answering_fails_only_the_agent_leg(
    ami: RawAmi, local_asterisk: LocalAsterisk
) -> None:
    async with asyncio.timeout(45):
        number = _caller_number()
        with AgentPhone(
            "agent2", local_asterisk.agents["agent2"], "127.0.0.4", answer=False, max_seconds=40
        ) as phone:
            call = place_call(number, max_seconds=30)
            try:
                caller = await _waiting_call(ami, number)
                agent_uid = await _originate_agent(ami, "agent2", caller, timeout_ms=3_000)
                response = await ami.wait_event(event_is("OriginateResponse", Uniqueid=agent_uid), 10)
                assert response["Response"] == "Failure", response
                await asyncio.to_thread(phone.wait_for, "CANCELLED", 5)
                assert phone.invites_seen()[-1].caller_number == number
                # The caller keeps waiting: no Hangup of its channel, and it is still up.
                with pytest.raises(AmiError):
                    await ami.wait_event(event_is("Hangup", Uniqueid=caller["Uniqueid"]), 2)
                state = await ami.action("Getvar", ("Channel", caller["Channel"]), ("Variable", "ACD_QUEUE"))
                assert state[0]["Response"] == "Success" and state[0]["Value"] == "general", state
                assert call.running()
            finally:
                call.kill()
