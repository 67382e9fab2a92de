"""The load test's own AMI connection: it records every event (with Asterisk's ``Timestamp``) and sends
the few actions the test needs (a waiting caller's patience running out, the app_queue phase).

It is deliberately independent of the service's AMI link: the test judges the service from what
Asterisk itself reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

Message = dict[str, str]


class AmiError(RuntimeError):
    """Connection refused or closed, login refused, or an action got no answer in time."""


class AmiListener:
    def __init__(self, on_event: Callable[[Message], None] | None = None) -> None:
        self.events: list[Message] = []
        self.on_event = on_event
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[list[Message]]] = {}
        self._lists: dict[str, list[Message]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    async def connect(self, host: str, port: int, username: str, secret: str, timeout: float = 10.0) -> None:
        self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        await asyncio.wait_for(self._reader.readline(), timeout)  # the banner
        self._task = asyncio.create_task(self._read_loop())
        reply = (await self.action("Login", Username=username, Secret=secret, timeout=timeout))[0]
        if reply.get("Response", "").lower() != "success":
            raise AmiError(f"AMI login refused: {reply.get('Message', '')}")

    async def _read_loop(self) -> None:
        assert self._reader is not None
        message: Message = {}
        try:
            while line := await self._reader.readline():
                text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                if text:
                    key, _, value = text.partition(":")
                    message[key.strip()] = value.strip()
                elif message:
                    self._dispatch(message)
                    message = {}
        finally:
            self.closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(AmiError("AMI connection closed"))

    def _dispatch(self, message: Message) -> None:
        action_id = message.get("ActionID", "")
        future = self._pending.get(action_id)
        if future is not None and not future.done():
            items = self._lists.setdefault(action_id, [])
            items.append(message)
            listing = message.get("EventList", "").lower()
            if listing == "complete" or ("Response" in message and listing != "start"):
                future.set_result(self._lists.pop(action_id))
            return
        if "Event" in message:
            self.events.append(message)
            if self.on_event is not None:
                self.on_event(message)

    async def action(self, name: str, *, timeout: float = 10.0, **headers: str) -> list[Message]:
        if self._writer is None or self.closed:
            raise AmiError("AMI connection is not open")
        action_id = f"lt{next(self._ids)}"
        lines = [f"Action: {name}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in headers.items())]
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            await self._writer.drain()
            return await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise AmiError(f"no answer to {name} within {timeout} s") from exc
        finally:
            self._pending.pop(action_id, None)

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError, AmiError, TimeoutError):
                await self.action("Logoff", timeout=2)
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
