"""What the shipped asterisk-config/ makes Asterisk do beyond the dialplan contract (issue 10):

* no name resolution per call (thousands of failed ``A.ROOT-SERVERS.NET`` lookups under load, one
  offer stalled 5 s: RTP bound to the any-address makes res_rtp_asterisk resolve names for RTCP);
* the service's AMI user receives only the events the service uses (``eventfilter``), while the
  replies to its list actions (``CoreShowChannels``, ``DeviceStateList``) still arrive whole.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devtools.local_asterisk import LocalAsterisk
from tests.e2e.ami_raw import RawAmi, event_is
from tests.e2e.sipp import AgentPhone, place_call

pytestmark = pytest.mark.e2e

#: The events the service consumes (app/services/distribution.py, presence_watch.py, acd/ami).
SERVICE_EVENTS = {
    "UserEvent",
    "Newchannel",
    "Hangup",
    "OriginateResponse",
    "DeviceStateChange",
    "ContactStatus",
    "FullyBooted",
    "Shutdown",
}
LOOKUP_FAILURE = re.compile(r"Unable to lookup|getaddrinfo\(")


def _log(asterisk: LocalAsterisk) -> Path:
    return asterisk.root / "var/log/asterisk/messages.log"


def _lookups_since(asterisk: LocalAsterisk, offset: int) -> list[str]:
    with _log(asterisk).open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return [line for line in text.splitlines() if LOOKUP_FAILURE.search(line)]


async def _login(asterisk: LocalAsterisk, username: str) -> RawAmi:
    client = await RawAmi.connect(asterisk.ami_host, asterisk.ami_port)
    reply = await client.login(username, asterisk.ami_secret)
    assert reply["Response"] == "Success", reply
    return client


@pytest.fixture
async def service_user(local_asterisk: LocalAsterisk) -> AsyncIterator[RawAmi]:
    client = await _login(local_asterisk, local_asterisk.ami_username)
    yield client
    await client.close()


@pytest.fixture
async def observer(local_asterisk: LocalAsterisk) -> AsyncIterator[RawAmi]:
    client = await _login(local_asterisk, local_asterisk.observer_username)
    yield client
    await client.close()


async def _answered_call(asterisk: LocalAsterisk, ami: RawAmi) -> None:
    """A citizen waits, an Originate like the service's rings agent3, who answers; the citizen hangs up."""
    number = f"1380013{uuid.uuid4().int % 10000:04d}"
    with AgentPhone("agent3", asterisk.agents["agent3"], "127.0.0.5", ring_seconds=0.2, max_seconds=40):
        call = place_call(number, hangup_after=6, max_seconds=30)  # after the bridge
        try:
            caller = await ami.wait_event(
                event_is("UserEvent", UserEvent="AcdCallWaiting", CallerIDNum=number), 10
            )
            uid = f"acd-cfg-{uuid.uuid4().hex[:10]}"
            reply = await ami.action(
                "Originate",
                ("Channel", "PJSIP/agent3"),
                ("Context", "acd-agent"),
                ("Exten", "s"),
                ("Priority", "1"),
                ("CallerID", f'"{number}" <{number}>'),
                ("Variable", f"ACD_CALLER={caller['Channel']}"),
                ("ChannelId", uid),
                ("Timeout", "10000"),
                ("Async", "true"),
            )
            assert reply[0]["Response"] == "Success", reply
            response = await ami.wait_event(event_is("OriginateResponse", Uniqueid=uid), 15)
            assert response["Response"] == "Success", response
            await ami.wait_event(event_is("Hangup", Uniqueid=caller["Uniqueid"]), 15)
            await ami.wait_event(event_is("Hangup", Uniqueid=uid), 10)
        finally:
            call.kill()


async def test_a_call_makes_asterisk_resolve_no_names(
    local_asterisk: LocalAsterisk, service_user: RawAmi
) -> None:
    async with asyncio.timeout(60):
        offset = _log(local_asterisk).stat().st_size
        await _answered_call(local_asterisk, service_user)
        await asyncio.sleep(0.5)  # let the logger flush
        lookups = _lookups_since(local_asterisk, offset)
        print(f"failed name lookups during one answered call: {len(lookups)}")
        assert lookups == [], lookups[:6]


async def test_the_service_user_gets_only_the_events_the_service_uses(
    local_asterisk: LocalAsterisk, service_user: RawAmi, observer: RawAmi
) -> None:
    async with asyncio.timeout(60):
        await _answered_call(local_asterisk, service_user)
        await asyncio.sleep(0.5)
        got = {e["Event"] for e in service_user.events}
        assert got <= SERVICE_EVENTS, got - SERVICE_EVENTS
        assert {"UserEvent", "Newchannel", "Hangup", "OriginateResponse"} <= got
        # the same call seen unfiltered: what no longer crosses the service's socket
        seen = {e["Event"] for e in observer.events}
        assert {"Newstate", "BridgeEnter", "HangupRequest"} <= seen, seen
        print(f"service user: {len(service_user.events)} events; unfiltered: {len(observer.events)}")


async def test_list_replies_are_not_filtered(local_asterisk: LocalAsterisk, service_user: RawAmi) -> None:
    with AgentPhone("agent4", local_asterisk.agents["agent4"], "127.0.0.6", max_seconds=30):
        devices = await service_user.action("DeviceStateList")
        assert devices[0]["Response"] == "Success", devices
        states = {e.get("Device"): e.get("State") for e in devices if e.get("Event") == "DeviceStateChange"}
        assert states.get("PJSIP/agent4") == "NOT_INUSE", states
        assert devices[-1]["Event"] == "DeviceStateListComplete"
        channels = await service_user.action("CoreShowChannels")
        assert channels[-1]["Event"] == "CoreShowChannelsComplete", channels[-1]
