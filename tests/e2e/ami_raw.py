"""A deliberately small AMI client for the end-to-end tests (asyncio streams, no library).

It is independent of the service's AMI link (acd/) on purpose: the tests judge Asterisk's
behaviour and the configuration, not the service's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

Message = dict[str, str]
"""One AMI message. Keys are as Asterisk sends them; a repeated key keeps its last value."""


class AmiError(RuntimeError):
    """Connection closed, login refused, or an action/event timed out."""


@dataclass
class RawAmi:
    """One AMI connection: send actions, read their responses, and collect every event."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    banner: str
    events: list[Message] = field(default_factory=list)
    _responses: dict[str, asyncio.Future[list[Message]]] = field(default_factory=dict)
    _lists: dict[str, list[Message]] = field(default_factory=dict)
    _new_event: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _task: asyncio.Task[None] | None = None
    closed: bool = False

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = 5.0) -> RawAmi:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        banner = (await asyncio.wait_for(reader.readline(), timeout)).decode().strip()
        ami = cls(reader=reader, writer=writer, banner=banner)
        ami._task = asyncio.create_task(ami._read_loop())
        return ami

    async def _read_message(self) -> Message | None:
        msg: Message = {}
        while True:
            line = await self.reader.readline()
            if not line:
                return None
            text = line.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text:
                if msg:
                    return msg
                continue
            key, _, value = text.partition(":")
            msg[key.strip()] = value.strip()

    async def _read_loop(self) -> None:
        try:
            while (msg := await self._read_message()) is not None:
                self._dispatch(msg)
        finally:
            self.closed = True
            for fut in self._responses.values():
                if not fut.done():
                    fut.set_exception(AmiError("AMI connection closed"))
            self._new_event.set()

    def _dispatch(self, msg: Message) -> None:
        action_id = msg.get("ActionID", "")
        fut = self._responses.get(action_id)
        if fut is not None and not fut.done():
            items = self._lists.setdefault(action_id, [])
            items.append(msg)
            # A list action ends with "EventList: Complete"; a plain one with its Response, except
            # a Response that announces a list ("EventList: start").
            if msg.get("EventList", "").lower() == "complete" or (
                "Response" in msg and msg.get("EventList", "").lower() != "start"
            ):
                fut.set_result(self._lists.pop(action_id))
            return
        if "Event" in msg:
            self.events.append(msg)
            self._new_event.set()

    async def action(self, name: str, *headers: tuple[str, str], timeout: float = 10.0) -> list[Message]:
        """Send an action; return its response (and the list items for list actions)."""
        action_id = f"t{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in headers)]
        fut: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._responses[action_id] = fut
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError as exc:
            raise AmiError(f"no response to {name} within {timeout} s") from exc
        finally:
            self._responses.pop(action_id, None)

    async def login(self, username: str, secret: str, timeout: float = 5.0) -> Message:
        return (await self.action("Login", ("Username", username), ("Secret", secret), timeout=timeout))[0]

    async def wait_event(
        self, predicate: Callable[[Message], bool], timeout: float, *, since: int = 0
    ) -> Message:
        """The first event (index >= since) matching predicate, waiting up to timeout seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = since
        while True:
            for msg in self.events[seen:]:
                if predicate(msg):
                    return msg
            seen = len(self.events)
            remaining = deadline - loop.time()
            if remaining <= 0 or self.closed:
                raise AmiError(f"no matching event within {timeout} s ({len(self.events)} events seen)")
            self._new_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), remaining)

    async def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self.writer.write(b"Action: Logoff\r\n\r\n")
                await self.writer.drain()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def event_is(name: str, **fields: str) -> Callable[[Message], bool]:
    """Predicate: an event named ``name`` whose given fields equal the given values."""

    def check(msg: Message) -> bool:
        return msg.get("Event") == name and all(msg.get(k) == v for k, v in fields.items())

    return check
