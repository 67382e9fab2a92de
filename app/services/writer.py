"""An ordered, retrying queue of storage writes, so the event loop never blocks on the database.

Writes run one at a time in a worker thread, in the order they were queued (a ticket is written after
its call). When the database is away, the write at the head is retried with backoff and nothing behind
it is dropped; the queue is bounded only by memory, and its length is exported for alerting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)


def is_outage(exc: BaseException) -> bool:
    """Whether a failed write is worth retrying: the database is unreachable, not the write wrong."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class StorageWriter:
    def __init__(self, *, max_delay: float = 10.0) -> None:
        self._queue: asyncio.Queue[tuple[str, Callable[[], Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._max_delay = max_delay
        self.failing = False

    def submit(self, what: str, write: Callable[[], Any]) -> None:
        self._queue.put_nowait((what, write))

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="storage-writer")

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        await asyncio.wait_for(self._queue.join(), timeout)

    async def stop(self) -> None:
        if self._task is None:
            return
        try:
            await self.drain(timeout=5.0)
        except TimeoutError:
            log.error("storage writes lost at shutdown", extra={"backlog": self.backlog})
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        while True:
            what, write = await self._queue.get()
            delay = 0.2
            while True:
                try:
                    await asyncio.to_thread(write)
                    if self.failing:
                        log.info("storage is back", extra={"write": what})
                    self.failing = False
                    break
                except Exception as exc:
                    if not is_outage(exc):
                        # A write the database refuses will be refused again: log it, keep going.
                        log.exception("storage write rejected", extra={"write": what})
                        break
                    if not self.failing:
                        log.exception("storage write failed, retrying", extra={"write": what})
                    self.failing = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_delay)
            self._queue.task_done()
