"""Byte-level AMI framing on top of panoramisk's action bookkeeping."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

from panoramisk import actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from acd.ami.model import AmiMessage, AmiNotConnected, add_repeated

log = logging.getLogger(__name__)

_END_OF_MESSAGE = b"\r\n\r\n"
_BANNER_PREFIX = "Asterisk Call Manager/"
# A single AMI message larger than this means the stream is not AMI (or is corrupt): drop the connection
# rather than buffer without bound.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# Malformed input is logged at most once per this many seconds per kind, with a count of the rest:
# a broken peer must not turn every bad line into a log record.
WARNING_INTERVAL = 10.0


_ODD_KEY = re.compile(r"[:\s]")


def _simple_store(text: str) -> dict[str, tuple[str, str | list[str]]] | None:
    """The headers of a message in the common form (every line ``Key: value``, no key twice), else None.

    The fast path, for nearly every message: a few C-level passes instead of a Python loop over lines.
    What it returns is exactly what :meth:`AmiProtocol._parse_lines` would (keys without ":" or
    whitespace split at their first ": " as at their first ":"); anything else goes there.
    """
    lines = text.split("\r\n")
    try:
        store = {key.lower(): (key, value) for key, value in [line.split(": ", 1) for line in lines]}
    except ValueError:  # a line without ": ": the banner, a malformed line
        return None
    if len(store) != len(lines) or "" in store or _ODD_KEY.search("".join(store)):
        return None
    return store  # type: ignore[return-value]


class RateLimitedWarnings:
    """Warnings of one kind at most once per ``interval`` seconds, saying how many were held back."""

    def __init__(self, logger: logging.Logger, interval: float = WARNING_INTERVAL) -> None:
        self._log = logger
        self._interval = interval
        self._state: dict[str, tuple[float, int]] = {}  # kind -> (last logged at, held back since)

    def warn(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last, held = self._state.get(kind, (-self._interval, 0))
        if now - last < self._interval:
            self._state[kind] = (last, held + 1)
            return
        self._state[kind] = (now, 0)
        if held:
            message += " (%d more like it in the last %.0f s)"
            args = (*args, held, now - last)
        self._log.warning(message, *args)


class AmiProtocol(AMIProtocol):
    """panoramisk's ``AMIProtocol`` keeping its ActionID bookkeeping, with its I/O edges replaced.

    Kept: ``handle_message`` and the ``responses`` table, i.e. matching responses and events to actions
    by ActionID and completing lists and async Originates (``panoramisk.actions.Action.add_message``).

    Replaced, because in panoramisk 1.4:

    - ``data_received`` decodes each TCP chunk on its own with ``errors='ignore'`` (a UTF-8 character
      split across reads is lost) and ``Message.from_line`` silently drops lines without ``": "``.
      Here bytes are buffered, only whole messages are decoded, malformed lines are logged and skipped.
    - ``close``/``connection_lost`` park pending actions in the Manager's ``awaiting_actions`` to be
      re-sent on ``FullyBooted`` (never, for a user without ``read=system``; a duplicate Originate when
      it does arrive) and drop actions that already got a first response, leaving their futures
      pending forever. Here every pending action fails with :class:`AmiNotConnected` at once.
    - ``send`` writes to a closed transport (the future then never resolves) and, if the write raises,
      logs the whole action, a Login's ``Secret`` included. Here it raises :class:`AmiNotConnected`.
    - An exception in an event handler escapes ``data_received`` and asyncio closes the connection.
      Here handlers and the bookkeeping run under ``try``; errors are logged per message.

    Added: events are held back until :meth:`release_events` (the link calls it once it counts as
    logged in), because Asterisk writes ``FullyBooted`` in the same read as the Login response and a
    handler reacting to it must find the link up. ``last_received`` (loop time) is when bytes last
    came in: any bytes prove the peer alive.
    """

    def __init__(self, on_event: Callable[[AmiMessage], None]) -> None:
        self._on_event = on_event
        self._buffer = bytearray()
        self._close_reason: str | None = None
        self._held: list[AmiMessage] | None = []  # events before release_events()
        self._warnings = RateLimitedWarnings(log)
        loop = asyncio.get_running_loop()
        self._loop_time = loop.time
        self.last_received = loop.time()
        # Resolves, with the reason text, when the connection is gone.
        self.lost: asyncio.Future[str] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.factory = self  # handle_message() delivers unmatched events to self.factory.dispatch()

    def send(self, data: actions.Action, as_list: bool | None = None) -> asyncio.Future[object]:
        """Register ``data`` for its response and write it; raise AmiNotConnected if closed."""
        if self.closed or self.transport.is_closing():
            raise AmiNotConnected(self._close_reason or "connection closed")
        data.as_list = as_list
        self.responses[data.id] = data
        self.transport.write(str(data).encode("utf-8"))
        return data.future

    def forget(self, action: actions.Action) -> None:
        """Stop tracking an action whose caller gave up (timeout, cancellation)."""
        self.responses.pop(action.id, None)

    def release_events(self) -> None:
        """Deliver the events held back so far, in order, and every later one as it comes."""
        held, self._held = self._held, None
        for message in held or ():
            self.dispatch(message)

    def data_received(self, data: bytes) -> None:
        self.last_received = self._loop_time()
        buffer = self._buffer
        search_from = max(0, len(buffer) - len(_END_OF_MESSAGE) + 1)
        buffer += data
        start = 0
        while not self.closed:
            end = buffer.find(_END_OF_MESSAGE, max(start, search_from))
            if end < 0:
                break
            self._handle_raw(bytes(buffer[start:end]))
            start = end + len(_END_OF_MESSAGE)
        del buffer[:start]
        if len(buffer) > MAX_MESSAGE_BYTES and not self.closed:
            log.error(
                "AMI message exceeds %d bytes without a terminator; dropping the connection",
                MAX_MESSAGE_BYTES,
            )
            self.abort("oversized message")

    def _handle_raw(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace")
        duplicates: list[str] = []
        store = _simple_store(text)
        if store is None:
            store = self._parse_lines(text, duplicates)
            if not store:
                return
        message = AmiMessage.from_store(store, tuple(duplicates))
        if "event" not in store and "response" not in store:
            self._warnings.warn(
                "message", "AMI: skipping message with neither Event nor Response: %r", message
            )
            return
        if duplicates:
            self._warnings.warn(
                "duplicate", "AMI: repeated header(s) %s in %s: first value kept", message.duplicates,
                message.get("Event") or message.get("Response"),
            )  # fmt: skip
        try:
            self.handle_message(message)
        except Exception:
            log.exception("AMI: failed to process %r", message)

    def _parse_lines(self, text: str, duplicates: list[str]) -> dict[str, tuple[str, str | list[str]]]:
        """Line by line: the banner, repeated headers, malformed lines (logged, skipped)."""
        store: dict[str, tuple[str, str | list[str]]] = {}
        for line in text.split("\r\n"):
            key, colon, value = line.partition(":")
            key = key.strip()
            if colon and key:
                value = value.removeprefix(" ")
                lower = key.lower()
                if lower in store:
                    add_repeated(store, lower, key, value, duplicates)
                else:
                    store[lower] = (key, value)
            elif self.version is None and line.startswith(_BANNER_PREFIX):
                self.version = line.removeprefix(_BANNER_PREFIX).strip()
                log.info("AMI banner: %s", line)
            elif line:
                self._warnings.warn("line", "AMI: skipping malformed line %r", line[:200])
        return store

    def handle_message(self, message: AmiMessage) -> None:  # type: ignore[override]
        """panoramisk's, with a fast path for what most messages are: an event of no action."""
        store = message._store
        if "actionid" in store or "commandid" in store or "event" not in store:
            super().handle_message(message)
            return
        if str(store["event"][1]).lower() == "shutdown":
            self.connection_lost(message)
        self.dispatch(message)

    def dispatch(self, message: AmiMessage) -> None:
        """Deliver an event that belongs to no pending action (called by ``handle_message``)."""
        if self._held is not None:
            self._held.append(message)
            return
        try:
            self._on_event(message)
        except Exception:
            log.exception("AMI event handler raised on %s", message.get("Event"))

    def abort(self, reason: str) -> None:
        """Drop the connection now (no flush: the peer may be gone) and fail everything pending."""
        if not self.closed:
            self.closed = True
            self._close_reason = reason
            self.transport.abort()
        self._finish(reason)

    def connection_lost(self, exc: Exception | Message | None) -> None:
        """Called by asyncio, and by ``handle_message`` with the ``Shutdown`` event itself."""
        if isinstance(exc, Message):
            self.abort("server shutdown")
            return
        self.closed = True
        self._finish("connection closed by server" if exc is None else f"connection lost: {exc}")

    def _finish(self, reason: str) -> None:
        if self.lost.done():
            return
        self._close_reason = self._close_reason or reason
        self.lost.set_result(self._close_reason)
        pending = list(self.responses.values())
        self.responses.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(AmiNotConnected(self._close_reason))
