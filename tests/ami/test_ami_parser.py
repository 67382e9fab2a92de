"""The parser's fast path for the common message says exactly what the line-by-line parser says."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from acd.ami.model import AmiMessage
from acd.ami.protocol import AmiProtocol, _simple_store

keys = st.one_of(
    st.sampled_from(
        ["Event", "event", "Channel", "Variable", "ActionID", "Uniqueid", "CallerIDName", "Output"]
    ),
    st.text(alphabet="AbZ-_:: \t1\x0b", min_size=0, max_size=6),
)
values = st.text(alphabet="ab :\t张伟<>.", max_size=8)
lines = st.one_of(
    st.tuples(keys, st.sampled_from([": ", ":", ":  ", " : "]), values).map("".join),
    st.sampled_from(["", "garbage", "Asterisk Call Manager/11.0.0"]),
)


def _protocol() -> AmiProtocol:
    return AmiProtocol(lambda message: None)


@settings(max_examples=500, deadline=None)
@given(st.lists(lines, min_size=1, max_size=8))
def test_the_fast_path_agrees_with_the_line_parser_or_declines(message_lines: list[str]) -> None:
    text = "\r\n".join(message_lines)

    async def check() -> None:
        fast = _simple_store(text)
        if fast is not None:
            duplicates: list[str] = []
            assert fast == _protocol()._parse_lines(text, duplicates)
            assert duplicates == []

    asyncio.run(check())


def test_the_common_event_takes_the_fast_path() -> None:
    text = "Event: Newchannel\r\nChannel: PJSIP/p1-0001\r\nCallerIDName: 张伟\r\nAppData: a: b"
    assert _simple_store(text) == {
        "event": ("Event", "Newchannel"),
        "channel": ("Channel", "PJSIP/p1-0001"),
        "calleridname": ("CallerIDName", "张伟"),
        "appdata": ("AppData", "a: b"),
    }


def test_repeated_headers_odd_keys_and_the_banner_go_the_long_way() -> None:
    for text in (
        "Event: VarSet\r\nVariable: A\r\nVariable: B",  # repeated
        "Event: X\r\nKey:value",  # no space after the colon
        "Event: X\r\n Key: value",  # space before the key
        "Event: X\r\nA:b: c",  # a colon in what the fast split would call the key
        "Asterisk Call Manager/11.0.0",
        "Event: X\r\n",
    ):
        assert _simple_store(text) is None, text


def test_get_is_case_insensitive_with_a_default() -> None:
    message = AmiMessage([("Event", "Hangup"), ("Variable", "a"), ("Variable", "b")])
    assert message.get("EVENT") == "Hangup"
    assert message.get("Cause") is None
    assert message.get("Cause", "") == ""
    assert message.get("variable") == ["a", "b"]
