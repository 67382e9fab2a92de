"""The service shell (DistributionService) over a socket-level fake AMI server.

The storage side is a list-recording stand-in here; the real database is exercised by tests/api and
the end-to-end tests. What this checks is the translation both ways: AMI events into the core, the
core's commands into AMI actions, and the rebuild after a (re)connect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from fake_ami import FakeAmi, encode, eventually

from acd import commands as cmd
from acd import events as ev
from acd.ami import AmiLink
from acd.engine import QueueConfig
from agents.presence import AgentState, Cause
from app.services.distribution import DistributionConfig, DistributionService


class Calls:
    """Records what the service asks storage to write."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, Any]] = []
        self.history: list[tuple[str, datetime]] = []

    def call_waiting(self, call_id: str, queue: str, number: str, priority: int, at: datetime) -> None:
        self.writes.append(("waiting", (call_id, queue, number, priority, at.timestamp())))

    def call_ringing(self, call_id: str, agent_id: str) -> None:
        self.writes.append(("ringing", (call_id, agent_id)))

    def call_answered(self, call_id: str, agent_id: str, at: datetime) -> int:
        self.writes.append(("answered", (call_id, agent_id)))
        return 1

    def call_ended(self, call_id: str, at: datetime, cause: str) -> None:
        self.writes.append(("ended", call_id))

    def call_abandoned(self, call_id: str, at: datetime, cause: str) -> None:
        self.writes.append(("abandoned", call_id))

    def call_overflowed(self, call_id: str, at: datetime, destination: str, reason: str) -> None:
        self.writes.append(("overflowed", (call_id, destination, reason)))

    def recent_callers(self, since: datetime) -> list[tuple[str, datetime]]:
        return self.history

    def open_calls(self) -> list:
        return []

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.writes]


def waiting_event(uniqueid: str, number: str) -> bytes:
    return encode(
        [
            ("Event", "UserEvent"),
            ("Privilege", "user,all"),
            ("Channel", f"PJSIP/citizens-{uniqueid}"),
            ("Uniqueid", uniqueid),
            ("CallerIDNum", number),
            ("UserEvent", "AcdCallWaiting"),
            ("Queue", "general"),
            ("CallPriority", "0"),
        ]
    )


async def service_on(fake: FakeAmi, calls: Calls) -> DistributionService:
    link = partial(
        AmiLink,
        host="127.0.0.1",
        port=fake.port,
        username=fake.username,
        secret=fake.secret,
        ping_interval=0.5,
        ping_timeout=0.5,
        reconnect_min_delay=0.02,
        reconnect_max_delay=0.1,
    )
    service = DistributionService(DistributionConfig((QueueConfig("general", ring_timeout=7),)), link, calls)
    await service.start()
    await eventually(lambda: service.link.up, what="link up")
    return service


async def test_waiting_call_rings_the_ready_agent_with_the_dialplan_contract(fake: FakeAmi) -> None:
    calls = Calls()
    service = await service_on(fake, calls)
    try:
        service.log_in("1001", "agent1", Cause.AGENT, "alice")
        service.make_ready("1001", Cause.AGENT, "alice")
        await fake.inject(waiting_event("1700000000.1", "13800138000"))
        await eventually(lambda: fake.actions_named("Originate"), what="originate")
        [originate] = fake.actions_named("Originate")
        assert originate["channel"] == "PJSIP/agent1"
        assert (originate["context"], originate["exten"], originate["timeout"]) == ("acd-agent", "s", "7000")
        assert "13800138000" in originate["callerid"]
        variables = (
            originate["variable"] if isinstance(originate["variable"], list) else [originate["variable"]]
        )
        assert "ACD_CALLER=PJSIP/citizens-1700000000.1" in variables
        assert originate["channelid"].startswith("acd-")
        # the fake answers the originate with Success: the call is answered by 1001
        await eventually(lambda: "answered" in calls.kinds(), what="answered")
        assert ("answered", ("1700000000.1", "1001")) in calls.writes
        assert service.center.presence.get("1001").state is AgentState.ON_CALL
        # the caller hangs up: the call is over, the agent ready again
        await fake.inject(encode([("Event", "Hangup"), ("Uniqueid", "1700000000.1"), ("Cause", "16")]))
        await eventually(lambda: "ended" in calls.kinds(), what="ended")
        assert service.center.presence.get("1001").state is AgentState.READY
    finally:
        await service.stop()


async def test_missed_offer_sets_not_ready_and_garbage_events_are_survived(fake: FakeAmi) -> None:
    fake.originate_reason = 3  # rang out
    calls = Calls()
    service = await service_on(fake, calls)
    try:
        service.log_in("1001", "agent1", Cause.AGENT, "alice")
        service.make_ready("1001", Cause.AGENT, "alice")
        await fake.inject(
            b"this is not AMI\r\n\r\n" + encode([("Event", "UserEvent"), ("UserEvent", "AcdCallWaiting")])
        )
        await fake.inject(waiting_event("1700000000.2", "13800138000"))
        await eventually(
            lambda: service.center.presence.get("1001").state is AgentState.NOT_READY, what="not ready"
        )
        assert service.center.presence.get("1001").reason == "missed_call"
        assert [c.call_id for c in service.center.engine.waiting_calls()] == ["1700000000.2"]
        assert service.link.up
    finally:
        await service.stop()


async def test_reconnect_rebuilds_waiting_callers_with_their_original_enqueue_time(fake: FakeAmi) -> None:
    fake.channels = [
        {
            "Channel": "PJSIP/citizens-00000007",
            "Uniqueid": "1700000000.7",
            "Context": "hotline-inbound",
            "Exten": "12345",
            "Application": "MusicOnHold",
            "CallerIDNum": "13900139000",
            "Duration": "00:00:42",
            "BridgeId": "",
        },
        {
            "Channel": "PJSIP/agent5-0001",
            "Uniqueid": "1700000000.8",
            "Context": "agent-phones",
            "Application": "Dial",
        },
    ]
    fake.variables[("PJSIP/citizens-00000007", "ACD_ENQUEUED")] = "1700000100"
    fake.variables[("PJSIP/citizens-00000007", "ACD_PRIORITY")] = "3"
    calls = Calls()
    service = await service_on(fake, calls)
    try:
        await eventually(lambda: "waiting" in calls.kinds(), what="rebuilt")
        [call] = service.center.engine.waiting_calls()
        assert (call.call_id, call.caller_number, call.enqueued_at, call.priority) == (
            "1700000000.7",
            "13900139000",
            1700000100.0,
            3,
        )
        # Asterisk restarts and the caller is gone: the next rebuild ends the call as abandoned
        fake.channels = []
        await fake.drop()
        await eventually(lambda: "abandoned" in calls.kinds(), what="abandoned after reconnect")
        assert service.link.reconnects >= 1
    finally:
        await service.stop()


async def test_caller_leaving_while_the_agent_rings_hangs_up_the_agent_leg(fake: FakeAmi) -> None:
    fake.originate_reason = None  # the phone keeps ringing
    calls = Calls()
    service = await service_on(fake, calls)
    try:
        service.log_in("1001", "agent1", Cause.AGENT, "alice")
        service.make_ready("1001", Cause.AGENT, "alice")
        await fake.inject(waiting_event("1700000000.3", "13800138000"))
        await eventually(lambda: fake.actions_named("Originate"), what="originate")
        leg = fake.actions_named("Originate")[0]["channelid"]
        await fake.inject(
            encode([("Event", "Newchannel"), ("Channel", "PJSIP/agent1-00000009"), ("Uniqueid", leg)])
        )
        await fake.inject(encode([("Event", "Hangup"), ("Uniqueid", "1700000000.3"), ("Cause", "16")]))
        await eventually(lambda: fake.actions_named("Hangup"), what="agent leg hung up")
        assert fake.actions_named("Hangup")[0]["channel"] == "PJSIP/agent1-00000009"
        assert "abandoned" in calls.kinds()
        assert service.center.presence.get("1001").state is AgentState.READY
    finally:
        await asyncio.wait_for(service.stop(), 5)


async def test_a_repeat_caller_within_the_window_waits_with_priority(fake: FakeAmi) -> None:
    calls = Calls()
    calls.history = [("13800138000", datetime.fromtimestamp(time.time() - 3600, tz=UTC))]
    service = await service_on(fake, calls)
    try:
        await fake.inject(waiting_event("1700000000.4", "13800138000"))
        await fake.inject(waiting_event("1700000000.5", "13911112222"))
        await eventually(lambda: len(service.center.engine.waiting_calls()) == 2, what="both waiting")
        priorities = {c.caller_number: c.priority for c in service.center.engine.waiting_calls()}
        assert priorities == {"13800138000": 1, "13911112222": 0}
    finally:
        await service.stop()


async def test_heartbeat_tells_the_dialplan_the_service_is_there(fake: FakeAmi) -> None:
    service = await service_on(fake, Calls())
    try:
        await eventually(lambda: fake.actions_named("Setvar"), what="heartbeat")
        beat = fake.actions_named("Setvar")[0]
        assert beat["variable"] == "ACD_HEARTBEAT" and "channel" not in beat
        assert abs(int(beat["value"]) - time.time()) < 5
    finally:
        await service.stop()


async def test_callers_found_in_the_fallback_queue_are_taken_back(fake: FakeAmi) -> None:
    fake.channels = [
        {
            "Channel": "PJSIP/citizens-00000011",
            "Uniqueid": "1700000000.11",
            "Context": "hotline-inbound",
            "Application": "Queue",
            "CallerIDNum": "13900139011",
            "BridgeId": "",
        }
    ]
    fake.variables[("PJSIP/citizens-00000011", "ACD_ENQUEUED")] = "1700000100.250"
    calls = Calls()
    service = await service_on(fake, calls)
    try:
        await eventually(lambda: fake.actions_named("Redirect"), what="redirect back")
        redirect = fake.actions_named("Redirect")[0]
        assert (redirect["channel"], redirect["context"], redirect["priority"]) == (
            "PJSIP/citizens-00000011",
            "hotline-inbound",
            "wait",
        )
        [call] = service.center.engine.waiting_calls()
        assert call.enqueued_at == 1700000100.25
    finally:
        await service.stop()


async def _one_agent_one_call(fake: FakeAmi, calls: Calls, number: str) -> DistributionService:
    service = await service_on(fake, calls)
    service.log_in("1001", "agent1", Cause.AGENT, "alice")
    service.make_ready("1001", Cause.AGENT, "alice")
    await fake.inject(waiting_event("1700000000.20", number))
    return service


@pytest.mark.parametrize("hangup_first", [True, False], ids=["hangup-first", "hangup-after"])
async def test_a_busy_phone_delays_its_agent_and_is_not_a_missed_call(
    fake: FakeAmi, hangup_first: bool
) -> None:
    """486 Busy Here: Reason 0 with the leg's Hangup cause 17, in either order (seen on Asterisk 22)."""
    fake.originate_reason, fake.originate_leg_cause, fake.leg_hangup_first = 0, "17", hangup_first
    calls = Calls()
    service = await _one_agent_one_call(fake, calls, "13800138020")
    delayed: list[object] = []
    service.listeners.append(
        lambda out: delayed.append(out) if isinstance(out, cmd.AgentOfferDelayed) else None
    )
    try:
        await eventually(lambda: delayed, what="busy delay")
        assert [d.reason for d in delayed] == [ev.OfferFailure.BUSY]  # type: ignore[attr-defined]
        assert service.center.presence.get("1001").state is AgentState.READY
        assert [c.call_id for c in service.center.engine.waiting_calls()] == ["1700000000.20"]
    finally:
        await service.stop()


async def test_a_declining_phone_is_rejected_not_unreachable(fake: FakeAmi) -> None:
    fake.originate_reason, fake.originate_leg_cause, fake.leg_hangup_first = 0, "21", False
    calls = Calls()
    service = await _one_agent_one_call(fake, calls, "13800138021")
    delayed: list[object] = []
    service.listeners.append(
        lambda out: delayed.append(out) if isinstance(out, cmd.AgentOfferDelayed) else None
    )
    try:
        await eventually(lambda: delayed, what="reject delay")
        assert [d.reason for d in delayed] == [ev.OfferFailure.REJECTED]  # type: ignore[attr-defined]
        assert service.center.presence.get("1001").state is AgentState.READY
    finally:
        await service.stop()


async def test_an_unregistered_phone_is_unreachable_at_once(fake: FakeAmi) -> None:
    fake.originate_reason, fake.originate_leg_cause = 0, None  # no leg is ever created
    calls = Calls()
    service = await _one_agent_one_call(fake, calls, "13800138022")
    try:
        await eventually(lambda: service.center.presence.get("1001").state is AgentState.NOT_READY)
        assert service.center.presence.get("1001").reason == "missed_call"
    finally:
        await service.stop()


async def test_no_new_offer_before_the_withdrawn_leg_is_gone(
    fake: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller leaves while agent1 rings; the next caller must not be offered to agent1 before
    Asterisk reports the old leg's Hangup (the INVITE would cross the CANCEL)."""
    caplog.set_level(logging.INFO)
    fake.originate_reason = None  # the phone rings until hung up
    service = await service_on(fake, Calls())
    try:
        service.log_in("1001", "agent1", Cause.AGENT, "alice")
        service.make_ready("1001", Cause.AGENT, "alice")
        await fake.inject(waiting_event("1700000000.30", "13800138030"))
        await fake.inject(waiting_event("1700000000.31", "13800138031"))
        await eventually(lambda: fake.actions_named("Originate"), what="first offer")
        leg = str(fake.actions_named("Originate")[0]["channelid"])
        await fake.inject(
            encode([("Event", "Newchannel"), ("Channel", "PJSIP/agent1-0000000a"), ("Uniqueid", leg)])
        )
        await fake.inject(encode([("Event", "Hangup"), ("Uniqueid", "1700000000.30"), ("Cause", "16")]))
        await eventually(lambda: fake.actions_named("Hangup"), what="the leg is hung up")
        await asyncio.sleep(0.2)
        assert len(fake.actions_named("Originate")) == 1  # not while the old leg may still ring
        await fake.inject(
            encode(
                [
                    ("Event", "Hangup"),
                    ("Channel", "PJSIP/agent1-0000000a"),
                    ("Uniqueid", leg),
                    ("Cause", "16"),
                ]
            )
        )
        await eventually(lambda: len(fake.actions_named("Originate")) == 2, what="second offer")
        assert "unreachable" not in caplog.text
    finally:
        await asyncio.wait_for(service.stop(), 5)
