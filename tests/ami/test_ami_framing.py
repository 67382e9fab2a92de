"""Framing and robustness of the AMI byte stream: splits, UTF-8, garbage, raising handlers."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fake_ami import FakeAmi, LinkFactory, Recorder, encode, eventually

from acd.ami import AmiLink, AmiMessage
from acd.ami import protocol as ami_protocol
from acd.ami.protocol import AmiProtocol

SAMPLE_PAIRS = [
    ("Event", "UserEvent"),
    ("Privilege", "user,all"),
    ("UserEvent", "AcdEnqueue"),
    ("Queue", "general"),
    ("CallerIDName", "张三丰"),
    ("Uniqueid", "1700000000.7"),
]
SAMPLE = encode(SAMPLE_PAIRS)


class _StubTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


async def test_protocol_reassembles_a_message_split_at_every_byte() -> None:
    """Deterministic: feed the protocol directly, two pieces, every cut (mid-line, mid-CRLF, mid-UTF-8)."""
    for cut in range(1, len(SAMPLE)):
        events: list[AmiMessage] = []
        proto = AmiProtocol(events.append)
        proto.connection_made(_StubTransport())
        proto.release_events()  # as the link does once logged in
        proto.data_received(SAMPLE[:cut])
        proto.data_received(SAMPLE[cut:])
        assert [dict(event) for event in events] == [dict(SAMPLE_PAIRS)], f"cut at byte {cut}"


async def test_protocol_one_byte_at_a_time_and_many_in_one_read() -> None:
    events: list[AmiMessage] = []
    proto = AmiProtocol(events.append)
    proto.connection_made(_StubTransport())
    proto.release_events()
    stream = b"Asterisk Call Manager/11.0.0\r\n" + SAMPLE * 3
    for index in range(len(stream)):
        proto.data_received(stream[index : index + 1])
    proto.data_received(SAMPLE * 50)
    assert len(events) == 53
    assert all(event["CallerIDName"] == "张三丰" for event in events)
    assert proto.version == "11.0.0"


async def test_message_split_across_socket_reads_at_every_byte(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder]
) -> None:
    link, recorder = up_link
    for cut in range(1, len(SAMPLE)):
        await fake.inject(SAMPLE, splits=[cut], pause=0.002)
        await eventually(lambda n=cut: len(recorder.events) >= n + 1, what=f"event cut at {cut}")
        assert dict(recorder.events[-1]) == dict(SAMPLE_PAIRS)
    assert len(recorder.events) == len(SAMPLE)  # FullyBooted, then one per cut
    assert link.up
    assert fake.connections_accepted == 1


async def test_many_messages_in_one_read(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    _, recorder = up_link
    batch = b"".join(encode([("Event", "Newchannel"), ("Uniqueid", f"1.{i}")]) for i in range(200))
    await fake.inject(batch)
    await eventually(lambda: len(recorder.events) == 201)
    assert [event["Uniqueid"] for event in recorder.events[1:]] == [f"1.{i}" for i in range(200)]


async def test_utf8_character_split_across_reads(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    _, recorder = up_link
    message = encode([("Event", "Newchannel"), ("CallerIDName", "王小明"), ("Exten", "12345")])
    start = message.index("王".encode())
    # cut after the first byte of 王, and after the second byte of 小
    await fake.inject(message, splits=[start + 1, start + 5])
    await eventually(lambda: len(recorder.events) == 2)
    assert recorder.events[-1]["CallerIDName"] == "王小明"
    assert recorder.events[-1]["callerIdName"] == "王小明"  # case-insensitive


async def test_garbage_is_logged_and_skipped(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    link, recorder = up_link
    caplog.set_level(logging.WARNING, logger="acd.ami")
    await fake.inject(
        b"Event: Hangup\r\nthis line has no colon\r\nUniqueid: 1.1\r\n\r\n"
        b"\xff\xfe\x00\x01\x80binary junk\r\n\r\n"
        b"Foo: no event nor response\r\n\r\n"
        b"\r\n\r\n"
        b"Event: Hangup\r\nUniqueid: 1.2\r\nCause-txt: \xe6\x9c\r\n\r\n"
    )
    await eventually(lambda: len(recorder.events) == 3)
    assert [event["Uniqueid"] for event in recorder.events[1:]] == ["1.1", "1.2"]
    assert "this line has no colon" not in str(recorder.events[1])
    assert "\ufffd" in recorder.events[2]["Cause-txt"]  # a truncated UTF-8 sequence is replaced, not fatal
    assert "skipping malformed line" in caplog.text
    assert "neither Event nor Response" in caplog.text
    assert (await link.send({"Action": "Ping"}))["Ping"] == "Pong"
    assert fake.connections_accepted == 1


async def test_raising_event_handler_does_not_close_the_link(
    fake: FakeAmi, make_link: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def on_event(message: AmiMessage) -> None:
        seen.append(message["Event"])
        if message["Event"] == "Boom":
            raise RuntimeError("handler bug")

    link, _ = make_link(on_event=on_event)
    await link.start()
    await eventually(lambda: link.up)
    await fake.inject(encode([("Event", "Boom")]) + encode([("Event", "After")]))
    await eventually(lambda: "After" in seen)
    await fake.inject(encode([("Event", "Boom")]))
    await eventually(lambda: seen.count("Boom") == 2)
    assert link.up
    assert (await link.send({"Action": "Ping"}))["Ping"] == "Pong"
    assert fake.connections_accepted == 1
    assert "event handler raised" in caplog.text


async def test_oversized_message_drops_and_reconnects(
    fake: FakeAmi, up_link: tuple[AmiLink, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    link, recorder = up_link
    monkeypatch.setattr(ami_protocol, "MAX_MESSAGE_BYTES", 1000)
    await fake.inject(b"Event: Huge\r\nData: " + b"x" * 2000)
    await eventually(lambda: recorder.disconnects == ["oversized message"])
    await eventually(lambda: link.up and link.reconnects == 1)


async def test_shutdown_event_reconnects(fake: FakeAmi, up_link: tuple[AmiLink, Recorder]) -> None:
    link, recorder = up_link
    await fake.inject(encode([("Event", "Shutdown"), ("Shutdown", "Cleanly"), ("Restart", "True")]))
    await eventually(lambda: recorder.disconnects == ["server shutdown"])
    assert recorder.events[-1]["Event"] == "Shutdown"
    await eventually(lambda: link.up and link.reconnects == 1)


def test_ami_message_is_read_only_case_insensitive_with_repeated_headers() -> None:
    message = AmiMessage([("Response", "Success"), ("Output", "a"), ("output", "b"), ("Output", "c")])
    assert message["OUTPUT"] == ["a", "b", "c"]
    assert message.response == "Success"
    assert dict(message) == {"Response": "Success", "Output": ["a", "b", "c"]}
    with pytest.raises(TypeError):
        message["Response"] = "Error"
