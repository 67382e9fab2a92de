"""The AMI link against what a real Asterisk (or a broken peer) does: FullyBooted in the same read as
the Login response, repeated headers, floods of malformed lines, a login that is never followed by a
Pong, and bursts of events ahead of the Pong (issue 9 item 7, issue 10 item 3)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fake_ami import FakeAmi, LinkFactory, encode, eventually

from acd.ami import AmiLink, AmiMessage, AmiNotConnected


async def test_an_action_sent_on_fully_booted_finds_the_link_up_after_every_login(
    fake: FakeAmi, make_link: LinkFactory
) -> None:
    """What the DeviceStateList rebuild does: 0 of 11 logins worked when FullyBooted came with Login."""
    results: list[str] = []
    tasks: set[asyncio.Task[None]] = set()
    link: AmiLink | None = None

    async def rebuild() -> None:
        assert link is not None
        try:
            results.append((await link.send({"Action": "Ping"}))["Ping"])
        except AmiNotConnected as exc:
            results.append(f"failed: {exc}")

    def on_event(message: AmiMessage) -> None:
        if message.get("Event") == "FullyBooted":
            task = asyncio.get_running_loop().create_task(rebuild())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    link, _ = make_link(on_event=on_event)
    await link.start()
    for login in range(1, 12):
        await eventually(lambda n=login: len(results) == n, what=f"rebuild after login {login}")
        if login < 11:
            await fake.drop()
    assert results == ["Pong"] * 11
    assert fake.logins == 11


async def test_a_repeated_event_header_keeps_the_message(
    fake: FakeAmi, up_link: tuple[AmiLink, object], caplog: pytest.LogCaptureFixture
) -> None:
    link, recorder = up_link
    caplog.set_level(logging.WARNING, logger="acd.ami")
    await fake.inject(
        encode([("Event", "Hangup"), ("Event", "Hangup"), ("Uniqueid", "1.5"), ("Uniqueid", "1.6")])
        + encode([("Event", "After"), ("Variable", "A=1"), ("Variable", "B=2")])
    )
    await eventually(lambda: [e["Event"] for e in recorder.events][-2:] == ["Hangup", "After"])
    hangup, after = recorder.events[-2:]
    assert (hangup["Event"], hangup["Uniqueid"]) == ("Hangup", "1.5")  # the first value wins
    assert after["Variable"] == ["A=1", "B=2"]  # repeatable headers stay lists
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert "repeated header" in caplog.text
    assert link.up


async def test_a_repeated_action_id_still_completes_the_action(
    fake: FakeAmi, up_link: tuple[AmiLink, object], caplog: pytest.LogCaptureFixture
) -> None:
    link, _ = up_link
    pending = asyncio.create_task(link.send({"Action": "Blackhole"}, timeout=1.0))
    await eventually(lambda: fake.actions_named("Blackhole"))
    action_id = str(fake.actions_named("Blackhole")[0]["actionid"])
    await fake.inject(encode([("Response", "Success"), ("ActionID", action_id), ("ActionID", action_id)]))
    reply = await asyncio.wait_for(pending, 1.0)
    assert reply["Response"] == "Success"
    assert "unhashable" not in caplog.text


async def test_a_flood_of_malformed_lines_is_logged_a_few_times_with_counts(
    fake: FakeAmi, up_link: tuple[AmiLink, object], caplog: pytest.LogCaptureFixture
) -> None:
    link, recorder = up_link
    caplog.set_level(logging.WARNING, logger="acd.ami")
    block = b"".join(b"Event: Noise\r\n" + b"no colon here\r\n" * 100 + b"\r\n" for _ in range(50))
    for _ in range(10):  # 50,000 malformed lines
        await fake.inject(block)
    await eventually(lambda: sum(e["Event"] == "Noise" for e in recorder.events) == 500, timeout=5)
    warnings = [r for r in caplog.records if "malformed line" in r.getMessage()]
    assert 1 <= len(warnings) <= 2, len(warnings)
    # the next one (after the interval) says how many were held back
    from acd.ami import protocol

    protocol_log = logging.getLogger("acd.ami.protocol")
    limiter = protocol.RateLimitedWarnings(protocol_log, interval=0.05)
    for _ in range(1000):
        limiter.warn("line", "AMI: skipping malformed line %r", "x")
    await asyncio.sleep(0.06)
    limiter.warn("line", "AMI: skipping malformed line %r", "x")
    assert "999 more like it" in caplog.text
    assert link.up


async def test_a_login_that_never_gets_a_pong_backs_off(fake: FakeAmi, make_link: LinkFactory) -> None:
    """Flapping: login ok, no Pong, ping timeout, immediate login again, full resync every time."""
    fake.ignored_actions.add("ping")
    link, recorder = make_link(
        ping_interval=0.05, ping_timeout=0.05, reconnect_min_delay=0.02, reconnect_max_delay=2.0
    )
    await link.start()
    await asyncio.sleep(1.5)
    # Without backoff: one login every ~0.12 s (interval + timeout + 0.02), about 12 in 1.5 s.
    assert 2 <= fake.logins <= 7, fake.logins
    assert recorder.disconnects and set(recorder.disconnects) == {"ping timeout"}


async def test_a_healthy_session_still_resets_the_backoff(fake: FakeAmi, make_link: LinkFactory) -> None:
    link, recorder = make_link(ping_interval=0.05, ping_timeout=0.2, reconnect_min_delay=0.05)
    await link.start()
    for drops in range(1, 6):
        await eventually(lambda: link.up, what="up")
        await asyncio.sleep(0.15)  # a Pong proves the peer alive
        await fake.drop()
        await eventually(lambda d=drops: len(recorder.disconnects) == d, what="drop")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await eventually(lambda: link.up, what="up again")
    assert loop.time() - started < 0.3  # the first delay (0.05 s), not a grown one


async def test_events_ahead_of_a_late_pong_keep_the_link_up_and_traffic_spares_pings(
    fake: FakeAmi, make_link: LinkFactory
) -> None:
    link, recorder = make_link(ping_interval=0.1, ping_timeout=0.1)
    await link.start()
    await eventually(lambda: link.up)
    # 1. A steady stream of events: the peer is obviously alive, no Ping is needed.
    pings_before = len(fake.actions_named("Ping"))
    for i in range(40):
        await fake.inject(encode([("Event", "Newstate"), ("Uniqueid", f"1.{i}")]))
        await asyncio.sleep(0.02)
    assert len(fake.actions_named("Ping")) == pings_before
    # 2. The Pong comes 0.3 s late (three ping timeouts) behind a burst of events.
    fake.pong_delay = 0.3
    await eventually(lambda: len(fake.actions_named("Ping")) > pings_before, timeout=1)
    for i in range(30):
        await fake.inject(encode([("Event", "VarSet"), ("Uniqueid", f"2.{i}")]))
        await asyncio.sleep(0.02)
    assert link.up and recorder.disconnects == []
    # 3. Real silence is still a dead link.
    fake.pong_delay = 0.0
    fake.go_silent()
    await eventually(lambda: recorder.disconnects == ["ping timeout"], timeout=1)
