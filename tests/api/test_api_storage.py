"""Schema, timestamps and the call recorder, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from app.db.migrate import alembic_config, upgrade
from app.db.models import Agent, Base, Call, CallOutcome, WorkOrder, WorkOrderCall, WorkOrderStatus
from app.services.calls import CallRecorder, RecorderError

from .conftest import T0


@pytest.fixture
def recorder(sessions: sessionmaker[Session]) -> CallRecorder:
    return CallRecorder(sessions)


def _call(sessions: sessionmaker[Session], call_id: str) -> Call:
    with sessions() as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call


def _tickets(sessions: sessionmaker[Session], call_id: str) -> list[WorkOrder]:
    """The work orders a call opened."""
    with sessions() as session:
        return list(session.scalars(select(WorkOrder).where(WorkOrder.origin_call_id == call_id)))


def _not_fts(name: str | None) -> bool:
    """The knowledge base's full-text index is made by the migration beside the models' tables: an FTS5
    virtual table (and its shadow tables) on SQLite, a GIN expression index on PostgreSQL."""
    return not (name or "").startswith("knowledge_fts")


def test_migrations_match_models_and_rerun(db_url: str, engine: Engine) -> None:
    upgrade(db_url)  # already at head: a no-op
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": lambda name, kind, parent: _not_fts(name)}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(db_url: str, engine: Engine) -> None:
    command.downgrade(alembic_config(db_url), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(db_url)
    tables = set(filter(_not_fts, inspect(engine).get_table_names()))
    assert tables == {"alembic_version", *Base.metadata.tables}


def test_timestamps_round_trip_aware_utc(sessions: sessionmaker[Session]) -> None:
    beijing = timezone(timedelta(hours=8))
    with sessions.begin() as session:
        session.add(Agent(id="1001", name="Li", created_at=datetime(2026, 3, 1, 17, 30, tzinfo=beijing)))
    with sessions() as session:
        agent = session.get(Agent, "1001")
        assert agent is not None
        assert agent.created_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        assert agent.created_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(StatementError, match="naive datetime"):
        session.add(Agent(id="1001", name="Li", created_at=datetime(2026, 3, 1, 9, 30)))
        session.flush()


def test_call_lifecycle_creates_one_ticket(sessions: sessionmaker[Session], recorder: CallRecorder) -> None:
    assert recorder.call_waiting("c1", "general", "13800000000", 2, T0)
    assert recorder.call_ringing("c1", "1001")
    ticket_id = recorder.call_answered("c1", "1001", T0 + timedelta(seconds=20))
    assert recorder.call_ended("c1", T0 + timedelta(minutes=3), 16)

    call = _call(sessions, "c1")
    assert (call.outcome, call.agent_id, call.priority, call.hangup_cause) == (
        CallOutcome.answered,
        "1001",
        2,
        "16",
    )
    assert call.answered_at == T0 + timedelta(seconds=20)
    assert call.ended_at == T0 + timedelta(minutes=3)
    [order] = _tickets(sessions, "c1")
    assert order.id == ticket_id
    # The order keeps its call, and starts open with the caller's number as the contact number.
    assert (order.origin_call_id, order.status, order.contact_number, order.version) == (
        "c1",
        WorkOrderStatus.open,
        "13800000000",
        1,
    )
    with sessions() as session:
        links = session.scalars(select(WorkOrderCall.call_id).where(WorkOrderCall.work_order_id == order.id))
        assert list(links) == ["c1"]
    with sessions() as session:  # the agent seen on the wire got a row
        assert session.get(Agent, "1001") is not None


def test_replayed_events_change_nothing(sessions: sessionmaker[Session], recorder: CallRecorder) -> None:
    recorder.call_waiting("c1", "general", "138", 0, T0)
    recorder.call_ringing("c1", "1001")
    ticket_id = recorder.call_answered("c1", "1001", T0 + timedelta(seconds=5))
    recorder.call_ended("c1", T0 + timedelta(minutes=1), "16")

    # The whole sequence again, as after an AMI reconnect, plus stray late events.
    assert not recorder.call_waiting("c1", "other", "999", 9, T0 + timedelta(hours=1))
    assert not recorder.call_ringing("c1", "1002")
    assert recorder.call_answered("c1", "1002", T0 + timedelta(hours=1)) == ticket_id
    assert not recorder.call_ended("c1", T0 + timedelta(hours=2), "17")
    assert not recorder.call_abandoned("c1", T0 + timedelta(hours=2), "17")

    call = _call(sessions, "c1")
    assert (call.queue, call.caller_number, call.agent_id, call.outcome, call.hangup_cause) == (
        "general",
        "138",
        "1001",
        CallOutcome.answered,
        "16",
    )
    assert call.ended_at == T0 + timedelta(minutes=1)
    assert len(_tickets(sessions, "c1")) == 1


def test_unanswered_offer_puts_call_back_to_waiting(
    sessions: sessionmaker[Session], recorder: CallRecorder
) -> None:
    recorder.call_waiting("c1", "general", "138", 0, T0)
    recorder.call_ringing("c1", "1001")
    assert recorder.call_waiting("c1", "general", "138", 0, T0 + timedelta(seconds=15))
    call = _call(sessions, "c1")
    assert (call.outcome, call.agent_id, call.enqueued_at) == (CallOutcome.waiting, None, T0)


def test_abandoned_call(sessions: sessionmaker[Session], recorder: CallRecorder) -> None:
    recorder.call_waiting("c1", "general", "138", 0, T0)
    recorder.call_ringing("c1", "1001")
    assert recorder.call_abandoned("c1", T0 + timedelta(seconds=30), "16")
    assert not recorder.call_abandoned("c1", T0 + timedelta(seconds=40), "16")
    call = _call(sessions, "c1")
    assert call.outcome is CallOutcome.abandoned
    assert call.ended_at == T0 + timedelta(seconds=30)
    with pytest.raises(RecorderError, match="abandoned"):
        recorder.call_answered("c1", "1001", T0 + timedelta(seconds=50))
    assert _tickets(sessions, "c1") == []


def test_hangup_before_answer_counts_as_abandoned(
    sessions: sessionmaker[Session], recorder: CallRecorder
) -> None:
    recorder.call_waiting("c1", "general", "138", 0, T0)
    assert recorder.call_ended("c1", T0 + timedelta(seconds=30), "16")
    assert _call(sessions, "c1").outcome is CallOutcome.abandoned


def test_abandon_does_not_override_an_answer(sessions: sessionmaker[Session], recorder: CallRecorder) -> None:
    recorder.call_waiting("c1", "general", "138", 0, T0)
    recorder.call_answered("c1", "1001", T0 + timedelta(seconds=5))
    assert not recorder.call_abandoned("c1", T0 + timedelta(seconds=30), "16")
    call = _call(sessions, "c1")
    assert (call.outcome, call.ended_at) == (CallOutcome.answered, None)


def test_events_for_unknown_calls(recorder: CallRecorder) -> None:
    assert not recorder.call_ringing("nope", "1001")
    assert not recorder.call_ended("nope", T0, "16")
    assert not recorder.call_abandoned("nope", T0, "16")
    with pytest.raises(RecorderError, match="unknown call"):
        recorder.call_answered("nope", "1001", T0)


def test_open_calls(recorder: CallRecorder) -> None:
    recorder.call_waiting("waiting", "general", "1", 0, T0 + timedelta(seconds=3))
    recorder.call_waiting("ringing", "general", "2", 5, T0 + timedelta(seconds=2))
    recorder.call_ringing("ringing", "1001")
    recorder.call_waiting("talking", "vip", "3", 0, T0 + timedelta(seconds=1))
    recorder.call_answered("talking", "1002", T0 + timedelta(seconds=4))
    recorder.call_waiting("gone", "general", "4", 0, T0)
    recorder.call_abandoned("gone", T0 + timedelta(seconds=9), "16")
    recorder.call_waiting("done", "general", "5", 0, T0)
    recorder.call_answered("done", "1003", T0 + timedelta(seconds=1))
    recorder.call_ended("done", T0 + timedelta(seconds=8), "16")

    open_calls = recorder.open_calls()
    assert [(c.call_id, c.outcome, c.agent_id) for c in open_calls] == [
        ("talking", CallOutcome.answered, "1002"),
        ("ringing", CallOutcome.ringing, "1001"),
        ("waiting", CallOutcome.waiting, None),
    ]
    assert open_calls[1].priority == 5
    assert open_calls[0].answered_at == T0 + timedelta(seconds=4)


def test_concurrent_answers_make_exactly_one_ticket(
    sessions: sessionmaker[Session], recorder: CallRecorder
) -> None:
    calls = [f"race-{i}" for i in range(20)]
    for call_id in calls:
        recorder.call_waiting(call_id, "general", "138", 0, T0)
    workers = 4
    barrier = threading.Barrier(workers)

    def answer(worker: int) -> list[int]:
        ids = []
        for call_id in calls:
            barrier.wait()  # all workers hit the same call at the same moment
            ids.append(recorder.call_answered(call_id, f"10{worker:02d}", T0 + timedelta(seconds=worker)))
        return ids

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(answer, range(workers)))

    for per_call in zip(*results, strict=True):
        assert len(set(per_call)) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == len(calls)
        assert session.scalar(select(func.count()).select_from(WorkOrderCall)) == len(calls)
        for call_id in calls:
            order = session.scalars(select(WorkOrder).where(WorkOrder.origin_call_id == call_id)).one()
            link = session.get(WorkOrderCall, call_id)
            assert link is not None and link.work_order_id == order.id
