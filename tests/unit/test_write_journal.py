"""The storage writer's journal: what a stop could not write is kept on disk, made once at the next start."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import OperationalError

from agents.presence import AgentState, Cause, Transition
from app.services.journal import JournalEntry, WriteJournal
from app.services.writer import StorageWriter

AT = datetime(2026, 3, 2, 1, 0, 0, 123456, tzinfo=UTC)


class Database:
    """Writes land in ``rows``; while ``up`` is false every write fails as an outage."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.rows: list[tuple[object, ...]] = []

    def call_waiting(self, call_id: str, at: datetime, priority: int | None = None) -> None:
        if not self.up:
            raise OperationalError("INSERT INTO calls", {}, Exception("database is locked"))
        self.rows.append((call_id, at, priority))

    def transition(self, t: Transition, endpoint: str | None) -> None:
        self.rows.append((t, endpoint))


def _writer(db: Database, journal: WriteJournal, grace: float = 0.3) -> StorageWriter:
    writer = StorageWriter(journal, shutdown_grace=grace)
    writer.register("call_waiting", db.call_waiting)
    writer.register("transition", db.transition)
    return writer


def test_the_journal_holds_what_is_not_done(tmp_path: Path) -> None:
    journal = WriteJournal(tmp_path / "w.journal")
    assert journal.pending() == []
    entries = [JournalEntry(f"id{n}", "call_waiting", (f"c{n}",)) for n in range(3)]
    assert journal.replace(entries) == 3
    journal.mark_done("id1")
    assert [e.id for e in journal.pending()] == ["id0", "id2"]
    with journal.path.open("a") as out:
        out.write('{"id": "id9", "op": "call_wait')  # a crash in the middle of an append
    assert [e.id for e in journal.pending()] == ["id0", "id2"]
    assert journal.replace([]) == 0 and not journal.path.exists()


def test_a_stop_journals_what_the_database_did_not_take(tmp_path: Path) -> None:
    db, journal = Database(up=False), WriteJournal(tmp_path / "w.journal")
    transition = Transition("1001", 12.5, AgentState.READY, AgentState.BUSY, "meal", Cause.AGENT, "alice")

    async def first_run() -> None:
        writer = _writer(db, journal)
        writer.start()
        writer.submit("call_waiting", "c1", AT, 2)
        writer.submit("transition", transition, "agent1")
        writer.submit("call_waiting", "c2", AT, None)
        await writer.stop()

    asyncio.run(first_run())
    assert db.rows == []
    assert [(e.op, e.args) for e in journal.pending()] == [
        ("call_waiting", ("c1", {"$datetime": AT.isoformat()}, 2)),
        (
            "transition",
            (
                {
                    "$fields": {
                        "agent_id": "1001",
                        "at": 12.5,
                        "from_state": "ready",
                        "to_state": "busy",
                        "reason": "meal",
                        "cause": "agent",
                        "actor": "alice",
                    }
                },
                "agent1",
            ),
        ),
        ("call_waiting", ("c2", {"$datetime": AT.isoformat()}, None)),
    ]

    async def next_run() -> None:
        db.up = True
        writer = _writer(db, journal)
        writer.submit("call_waiting", "c3", AT)  # new work waits for the journal's
        await writer.replay(timeout=5)
        await writer.drain(timeout=5)
        await writer.stop()

    asyncio.run(next_run())
    assert db.rows == [("c1", AT, 2), (transition, "agent1"), ("c2", AT, None), ("c3", AT, None)]
    assert not journal.path.exists()
    asyncio.run(next_run())  # a later start replays nothing again
    assert [r[0] for r in db.rows].count("c1") == 1


def test_a_clean_stop_waits_while_writes_go_through(tmp_path: Path) -> None:
    """A backlog longer than the grace period is written, not dropped, while it makes progress."""
    db = Database()
    slow = db.call_waiting

    def call_waiting(call_id: str, at: datetime, priority: int | None = None) -> None:
        time.sleep(0.02)
        slow(call_id, at, priority)

    async def scenario() -> None:
        writer = StorageWriter(WriteJournal(tmp_path / "w.journal"), shutdown_grace=0.2)
        writer.register("call_waiting", call_waiting)
        writer.start()
        for n in range(40):  # about 0.8 s of writes, four grace periods
            writer.submit("call_waiting", f"c{n}", AT)
        await writer.stop()

    asyncio.run(scenario())
    assert len(db.rows) == 40
    assert not (tmp_path / "w.journal").exists()


def test_journaled_writes_of_an_unknown_kind_stay_in_the_journal(tmp_path: Path) -> None:
    """A write of a kind this version does not know (say, after a downgrade) is not thrown away."""
    db, journal = Database(), WriteJournal(tmp_path / "w.journal")
    journal.replace([JournalEntry("a", "call_waiting", ("c1", None)), JournalEntry("b", "fax_sent", ("x",))])

    async def scenario() -> None:
        writer = _writer(db, journal)
        await writer.replay(timeout=5)
        await writer.stop()

    asyncio.run(scenario())
    assert db.rows == [("c1", None, None)]
    assert journal.pending() == [JournalEntry("b", "fax_sent", ("x",))]
