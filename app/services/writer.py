"""An ordered, retrying queue of storage writes, so the event loop never blocks on the database.

Writes run one at a time in a worker thread, in the order they were queued (a ticket is written after
its call). When the database is away, the write at the head is retried with backoff and nothing behind
it is dropped; the queue is bounded only by memory. Its length, whether writes are failing and the
failures so far are exported as metrics and decide readiness (``/readyz``).

Each write is an operation name and its arguments (``submit("call_answered", call_id, ...)``), the
operation registered once with the function that makes it. That makes a write data, which a stop can
keep: a clean stop drains the queue completely while writes succeed; when the database does not take
a write for ``shutdown_grace`` seconds, what is left goes to the local :class:`WriteJournal`, and the
next start makes those writes first (:meth:`StorageWriter.replay`), before anything new.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.services.journal import JournalEntry, WriteJournal, decode_args

log = logging.getLogger(__name__)


def is_outage(exc: BaseException) -> bool:
    """Whether a failed write is worth retrying: the database is unreachable, not the write wrong."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _describe(exc: BaseException) -> str:
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


class StorageWriter:
    def __init__(
        self, journal: WriteJournal | None = None, *, max_delay: float = 10.0, shutdown_grace: float = 10.0
    ) -> None:
        self._queue: asyncio.Queue[JournalEntry] = asyncio.Queue()
        self._ops: dict[str, Callable[..., Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._current: JournalEntry | None = None  # taken from the queue, not yet written
        self._current_since = 0.0  # monotonic time its first attempt began
        self._replaying: set[str] = set()  # ids of journaled writes not yet made again
        self._unknown: list[JournalEntry] = []  # journaled writes of no registered kind: kept there
        self._max_delay = max_delay
        self._shutdown_grace = shutdown_grace
        self.journal = journal
        self.failing = False  # the write at the head failed its last attempt
        self.last_error = ""
        self.failures = {"outage": 0, "rejected": 0}  # failed attempts: retried / given up
        self._settled = 0  # writes made or given up: progress, for the shutdown drain

    def register(self, op: str, write: Callable[..., Any]) -> None:
        """Name the function that makes the writes ``op``; its type hints read journaled arguments."""
        self._ops[op] = write

    def submit(self, op: str, *args: Any) -> None:
        if op not in self._ops:
            raise KeyError(f"unregistered storage write {op!r}")
        self._queue.put_nowait(JournalEntry(uuid.uuid4().hex, op, args))

    @property
    def backlog(self) -> int:
        """Writes queued and not yet made (the one being attempted included)."""
        return self._queue.qsize() + (self._current is not None)

    def stalled_for(self) -> float:
        """Seconds the write at the head has been waiting to be made (0 when there is none)."""
        return time.monotonic() - self._current_since if self._current is not None else 0.0

    def start(self) -> None:
        """Start writing; journaled writes of an earlier run come first. Idempotent."""
        if self._task is not None:
            return
        if self.journal is not None:
            waiting = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
            for _ in waiting:
                self._queue.task_done()  # put back below, behind the journal's
            for entry in self.journal.pending():
                if entry.op not in self._ops:
                    log.error("journaled write of unknown kind %s kept", entry.op, extra={"write": entry.op})
                    self._unknown.append(entry)
                    continue
                self._replaying.add(entry.id)
                self._queue.put_nowait(entry)
            for entry in waiting:
                self._queue.put_nowait(entry)
            if self._replaying:
                log.warning("replaying %d storage writes from the journal", len(self._replaying))
        self._task = asyncio.create_task(self._run(), name="storage-writer")

    async def replay(self, timeout: float = 30.0) -> None:
        """Start, and wait (up to ``timeout``) until the journaled writes are made.

        Called before the previous run's state is read back from the database (presence, open
        incidents), so that state includes them.
        """
        self.start()
        try:
            async with asyncio.timeout(timeout):
                while self._replaying:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            log.error("journaled storage writes not made yet", extra={"backlog": len(self._replaying)})

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        await asyncio.wait_for(self._queue.join(), timeout)

    async def stop(self) -> None:
        """Write everything queued; journal what the database would not take (see the module doc)."""
        if self._task is None:
            return
        while True:
            settled = self._settled
            try:
                await self.drain(timeout=self._shutdown_grace)
                break
            except TimeoutError:
                if self._settled == settled:  # nothing went through for the whole grace period
                    break
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        left = self._unknown + ([self._current] if self._current is not None else [])
        left += [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        self._current = None
        if self.journal is not None:
            kept = await asyncio.to_thread(self.journal.replace, left)
            if kept:
                where = str(self.journal.path)
                log.error("storage writes journaled at shutdown", extra={"backlog": kept, "journal": where})
        elif left:
            log.error("storage writes lost at shutdown (no journal)", extra={"backlog": len(left)})

    async def _run(self) -> None:
        while True:
            entry = self._current = await self._queue.get()
            self._current_since = time.monotonic()
            delay = 0.2
            while True:
                try:
                    await asyncio.to_thread(self._make, entry)
                    if self.failing:
                        log.info("storage is back", extra={"write": entry.op})
                    self.failing = False
                    break
                except Exception as exc:
                    self.last_error = _describe(exc)
                    if not is_outage(exc):
                        # A write the database refuses will be refused again: log it, keep going.
                        self.failures["rejected"] += 1
                        log.exception("storage write rejected", extra={"write": entry.op})
                        break
                    self.failures["outage"] += 1
                    if not self.failing:
                        log.exception("storage write failed, retrying", extra={"write": entry.op})
                    self.failing = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_delay)
            self._settled += 1
            if entry.id in self._replaying:
                self._replaying.discard(entry.id)
                await asyncio.to_thread(self._replayed, entry.id, not self._replaying)
            self._current = None
            self._queue.task_done()

    def _make(self, entry: JournalEntry) -> None:
        write = self._ops[entry.op]
        # A journaled write's arguments are JSON: read them back by the write's type hints.
        write(*(decode_args(write, entry.args) if entry.id in self._replaying else entry.args))

    def _replayed(self, entry_id: str, last: bool) -> None:
        """Journal bookkeeping after a replayed write: mark it done; remove the journal after the last."""
        assert self.journal is not None
        if last:
            self.journal.replace(self._unknown)
        else:
            self.journal.mark_done(entry_id)
