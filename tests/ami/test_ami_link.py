"""AmiLink behaviour against the fake AMI server: login, liveness, reconnect, actions, originate."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket

import pytest
from fake_ami import FakeAmi, LinkFactory, Recorder, eventually

from acd.ami import (
    AmiError,
    AmiLink,
    AmiNotConnected,
    AmiTimeout,
    backoff_delay,
)

SECRET = "s3cret-never-logged"


async def test_wrong_credentials_then_correct(
    make_link: LinkFactory, fake: FakeAmi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.secret = "something-else"
    link, recorder = make_link(secret=SECRET, reconnect_min_delay=0.05, reconnect_max_delay=0.2)
    await link.start()
    await eventually(lambda: len(fake.login_attempt_times) >= 4, what="login retries")
    assert link.status == "authentication failed: Authentication failed"
    assert not link.up
    assert recorder.connected == 0 and recorder.disconnects == []
    gaps = [b - a for a, b in itertools.pairwise(fake.login_attempt_times)]
    assert all(gap >= 0.05 for gap in gaps), gaps
    assert "refused: Authentication failed" in caplog.text

    fake.secret = SECRET
    await eventually(lambda: link.up, what="login with the right secret")
    assert link.status == "up"
    assert link.reconnects == 0
    await eventually(lambda: recorder.connected == 1)
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.__dict__)


def test_backoff_delay_grows_with_jitter_within_bounds() -> None:
    for failures in range(1, 40):
        ceiling = min(30.0, 0.5 * 2 ** (failures - 1))
        delays = [backoff_delay(failures, 0.5, 30.0) for _ in range(50)]
        assert all(max(0.5, ceiling / 2) <= delay <= ceiling for delay in delays)
    assert backoff_delay(1, 0.5, 30.0, uniform=lambda low, high: high) == 0.5
    assert backoff_delay(4, 0.5, 30.0, uniform=lambda low, high: high) == 4.0
    assert backoff_delay(100, 0.5, 30.0, uniform=lambda low, high: low) == 15.0


async def test_server_close_reconnects_and_runs_on_connected_again(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder]
) -> None:
    link, recorder = up_link
    await eventually(lambda: recorder.connected == 1)
    await fake.drop()
    await eventually(lambda: recorder.disconnects == ["connection closed by server"])
    await eventually(lambda: link.up and recorder.connected == 2, what="reconnect")
    assert link.reconnects == 1
    assert fake.logins == 2


async def test_server_gone_then_back_on_the_same_port(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder]
) -> None:
    link, recorder = up_link
    port = fake.port
    await fake.close()
    await eventually(lambda: link.status == "connection refused", what="refused status")
    assert recorder.disconnects == ["connection closed by server"]
    assert not link.up
    with pytest.raises(AmiNotConnected):
        await link.send({"Action": "Ping"})
    await fake.start(port=port)
    await eventually(lambda: link.up and recorder.connected == 2, timeout=3.0)
    assert link.reconnects == 1


async def test_connection_refused_at_start_then_server_appears(make_link: LinkFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    link, recorder = make_link(port=port)
    await link.start()
    await eventually(lambda: link.status == "connection refused")
    late = FakeAmi()
    await late.start(port=port)
    try:
        await eventually(lambda: link.up, timeout=3.0)
        assert link.reconnects == 0
        await eventually(lambda: recorder.connected == 1)
    finally:
        await link.stop()
        await late.close()


async def test_on_connected_exception_is_logged_and_link_stays_up(
    fake: FakeAmi, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    link, recorder = make_link()
    recorder.connected_error = RuntimeError("rebuild failed")
    await link.start()
    await eventually(lambda: recorder.connected == 1)
    await asyncio.sleep(0.5)  # more than two ping intervals
    assert link.up
    assert fake.connections_accepted == 1
    assert "on_connected callback raised" in caplog.text


async def test_silent_server_is_detected_by_ping_and_link_reconnects(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder]
) -> None:
    link, recorder = up_link
    loop = asyncio.get_running_loop()
    fake.go_silent()
    started = loop.time()
    await eventually(lambda: recorder.disconnects == ["ping timeout"], timeout=1.0)
    assert loop.time() - started <= 0.2 + 0.2 + 0.1  # ping_interval + ping_timeout + scheduling slack
    await eventually(lambda: link.up and link.reconnects == 1)
    assert fake.connections_accepted == 2


async def test_pending_action_fails_fast_when_server_dies_and_is_not_resent(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder]
) -> None:
    link, _ = up_link
    pending = asyncio.create_task(link.send({"Action": "Blackhole"}, timeout=5.0))
    await eventually(lambda: len(fake.actions_named("Blackhole")) == 1)
    await fake.drop()
    with pytest.raises(AmiNotConnected):
        await asyncio.wait_for(pending, 0.5)
    await eventually(lambda: link.up and link.reconnects == 1)
    await asyncio.sleep(0.1)  # FullyBooted arrived after the re-login; nothing may be re-sent
    assert len(fake.actions_named("Blackhole")) == 1


async def test_send_timeout(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    link, _ = up_link
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiTimeout):
        await link.send({"Action": "Blackhole"}, timeout=0.1)
    assert loop.time() - started < 0.5
    assert link.up
    assert link._protocol is not None and not link._protocol.responses  # nothing left tracked
    assert (await link.send({"Action": "Ping"}))["Ping"] == "Pong"


async def test_send_error_response_raises_ami_error(up_link: tuple[AmiLink, Recorder]) -> None:
    link, _ = up_link
    with pytest.raises(AmiError, match="Invalid/unknown command") as caught:
        await link.send({"Action": "NoSuchThing"})
    assert caught.value.response["Response"] == "Error"


async def test_send_before_start_raises_not_connected(make_link: LinkFactory) -> None:
    link, _ = make_link()
    assert link.status == "not started"
    with pytest.raises(AmiNotConnected):
        await link.send({"Action": "Ping"})


async def test_send_list_returns_only_the_items(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    link, recorder = up_link
    fake.channels = [
        {"Channel": "PJSIP/citizen-0001", "CallerIDName": "李四", "Uniqueid": "1.1"},
        {"Channel": "PJSIP/agent-1001-0002", "CallerIDName": "坐席1001", "Uniqueid": "1.2"},
    ]
    items = await link.send_list({"Action": "CoreShowChannels"})
    assert [item["Event"] for item in items] == ["CoreShowChannel", "CoreShowChannel"]
    assert [item["CallerIDName"] for item in items] == ["李四", "坐席1001"]
    fake.channels = []
    assert await link.send_list({"Action": "CoreShowChannels"}) == []
    assert [event["Event"] for event in recorder.events] == ["FullyBooted"]  # items did not leak
    with pytest.raises(AmiError):
        await link.send_list({"Action": "NoSuchList"})


async def test_originate_success(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    link, recorder = up_link
    result = await link.originate(
        channel="PJSIP/1001",
        context="acd-agent",
        exten="s",
        caller_id='"张三" <13800000000>',
        variables={"ACD_CALLER": "PJSIP/citizen-00000001", "ACD_QUEUE": "general"},
        timeout=15,
        channel_id="agent-leg-1",
        other_channel_id="agent-leg-1;2",
    )
    assert result.success and result.reason_code == 4
    assert result.channel == "PJSIP/1001" and result.uniqueid == "1700000000.42"
    assert result.raw["Event"] == "OriginateResponse"
    (sent,) = fake.actions_named("Originate")
    assert sent["async"] == "true" and sent["timeout"] == "15000"
    assert sent["callerid"] == '"张三" <13800000000>'
    assert sent["variable"] == ["ACD_CALLER=PJSIP/citizen-00000001", "ACD_QUEUE=general"]
    assert sent["channelid"] == "agent-leg-1" and sent["otherchannelid"] == "agent-leg-1;2"
    assert "OriginateResponse" not in [event["Event"] for event in recorder.events]


@pytest.mark.parametrize("reason_code", [0, 1, 3, 5, 8])
async def test_originate_failure_carries_the_reason_code(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder], reason_code: int
) -> None:
    link, _ = up_link
    fake.originate_reason = reason_code
    result = await link.originate(
        channel="PJSIP/1001", context="acd-agent", exten="s", caller_id=None, variables={}, timeout=5
    )
    assert not result.success
    assert result.reason_code == reason_code  # its meaning: app/services/telephony.py
    assert result.uniqueid is None  # Asterisk reports <null>
    (sent,) = fake.actions_named("Originate")
    assert "callerid" not in sent and "variable" not in sent


async def test_originate_raises_not_connected_when_link_drops(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder]
) -> None:
    link, _ = up_link
    fake.originate_reason = None
    pending = asyncio.create_task(
        link.originate(
            channel="PJSIP/1001", context="acd-agent", exten="s", caller_id=None, variables={}, timeout=30
        )
    )
    await eventually(lambda: len(fake.actions_named("Originate")) == 1)
    await asyncio.sleep(0.05)  # the Success response is in: panoramisk 1.4 would now drop the future
    await fake.drop()
    with pytest.raises(AmiNotConnected):
        await asyncio.wait_for(pending, 0.5)


async def test_originate_timeout(fake: FakeAmi, make_link: LinkFactory) -> None:
    link, _ = make_link(action_timeout=0.2)
    await link.start()
    await eventually(lambda: link.up)
    fake.originate_reason = None
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(AmiTimeout):
        await link.originate(
            channel="PJSIP/1001", context="acd-agent", exten="s", caller_id=None, variables={}, timeout=0.1
        )
    assert 0.3 <= loop.time() - started < 0.8
    assert link.up


async def test_line_breaks_in_values_are_rejected(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    link, _ = up_link
    with pytest.raises(ValueError, match="CallerID"):
        await link.originate(
            channel="PJSIP/1001",
            context="acd-agent",
            exten="s",
            caller_id="x\r\nAction: Hangup",
            variables={},
            timeout=5,
        )
    assert fake.actions_named("Originate") == []


async def test_stop_logs_off_and_is_idempotent(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    link, recorder = up_link
    await asyncio.wait_for(link.stop(), 2)
    assert len(fake.actions_named("Logoff")) == 1
    assert link.status == "stopped" and not link.up
    assert recorder.disconnects == ["stopped"]
    await asyncio.wait_for(link.stop(), 1)
    await asyncio.sleep(0.15)
    assert fake.logins == 1  # no reconnect after stop
    with pytest.raises(AmiNotConnected):
        await link.send({"Action": "Ping"})


async def test_stop_while_retrying_a_refused_connection(make_link: LinkFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    link, recorder = make_link(port=port)
    await link.start()
    await eventually(lambda: link.status == "connection refused")
    await asyncio.wait_for(link.stop(), 1)
    assert link.status == "stopped"
    assert recorder.disconnects == []
