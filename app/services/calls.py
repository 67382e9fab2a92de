"""Calls, and the work order each answered call opens.

:class:`CallRecorder` persists what the ACD runtime sees on the AMI link. The link may replay events
after a reconnect and events of one call may be delivered twice, so every method is idempotent and a
call only moves forward::

    waiting <-> ringing -> answered -> (ended)
    waiting/ringing -> abandoned

A replayed or late event that would move a call backwards is ignored (the method returns ``False``).
Statements are ordered write-first so that on SQLite each transaction takes the write lock before
reading (a deferred reader upgrading to writer fails with "database is locked" instead of waiting).

The read side (:func:`list_calls`) serves the API; work orders are read and edited through
``app.services.work_orders``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Agent, Call, CallOutcome, WorkOrder, WorkOrderCall, WorkOrderStatus, utcnow

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_UNANSWERED = (CallOutcome.waiting, CallOutcome.ringing)


class RecorderError(Exception):
    """An event that cannot be applied: it names an unknown call or contradicts its recorded fate."""


@dataclass(frozen=True, slots=True)
class OpenCall:
    """A call not yet ended, as needed to rebuild the runtime's state after a restart."""

    call_id: str
    queue: str
    caller_number: str | None
    priority: int
    enqueued_at: datetime
    outcome: CallOutcome
    agent_id: str | None
    answered_at: datetime | None


def _insert(session: Session) -> Any:
    """The dialect's INSERT construct, which knows ``ON CONFLICT DO NOTHING``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"unsupported database dialect {dialect!r}")


def _ensure_agent(session: Session, agent_id: str) -> None:
    # Calls and tickets reference agents; an agent seen on the wire before anyone registered it
    # in the database still gets a row (named after its id) rather than losing the event.
    stmt = _insert(session)(Agent).values(id=agent_id, name=agent_id).on_conflict_do_nothing()
    session.execute(stmt)


class CallRecorder:
    """Synchronous, idempotent persistence of call events; safe to call from any thread."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    def call_waiting(
        self,
        call_id: str,
        queue: str,
        caller_number: str | None,
        priority: int,
        enqueued_at: datetime,
    ) -> bool:
        """Record a call entering the queue, or one put back into it after an unanswered offer.

        Returns ``True`` if something changed. ``enqueued_at`` of an existing call is kept.
        """
        with self._sessions.begin() as session:
            inserted = session.execute(
                _insert(session)(Call)
                .values(
                    id=call_id,
                    queue=queue,
                    caller_number=caller_number,
                    priority=priority,
                    enqueued_at=enqueued_at,
                    outcome=CallOutcome.waiting,
                )
                .on_conflict_do_nothing(index_elements=[Call.id])
                .returning(Call.id)
            ).first()
            if inserted is not None:
                return True
            requeued = session.execute(
                update(Call)
                .where(Call.id == call_id, Call.outcome == CallOutcome.ringing, Call.ended_at.is_(None))
                .values(outcome=CallOutcome.waiting, agent_id=None)
            )
            return requeued.rowcount > 0

    def call_ringing(self, call_id: str, agent_id: str) -> bool:
        """Record that ``agent_id``'s phone is ringing for the call. Ignored unless still unanswered."""
        with self._sessions.begin() as session:
            _ensure_agent(session, agent_id)
            result = session.execute(
                update(Call)
                .where(Call.id == call_id, Call.outcome.in_(_UNANSWERED), Call.ended_at.is_(None))
                .values(outcome=CallOutcome.ringing, agent_id=agent_id)
            )
            if result.rowcount == 0 and session.get(Call, call_id) is None:
                log.warning("ringing for unknown call %s (agent %s) ignored", call_id, agent_id)
            return result.rowcount > 0

    def call_answered(self, call_id: str, agent_id: str, answered_at: datetime) -> int:
        """Record the answer and return the call's work order id, opening the order the first time.

        Exactly one order per call, even when two workers race: the insert is
        ``ON CONFLICT (origin_call_id) DO NOTHING`` and the loser reads the winner's row (on PostgreSQL
        the loser's insert waits for the winner's commit). A replay with another agent keeps the first.
        The order starts open, its contact number the caller's; the agent fills in the rest.

        Raises :class:`RecorderError` if the call is unknown or was abandoned.
        """
        with self._sessions.begin() as session:
            _ensure_agent(session, agent_id)
            session.execute(
                update(Call)
                .where(Call.id == call_id, Call.outcome.in_(_UNANSWERED), Call.ended_at.is_(None))
                .values(outcome=CallOutcome.answered, agent_id=agent_id, answered_at=answered_at)
            )
            call = session.get(Call, call_id)
            if call is None:
                raise RecorderError(f"answer for unknown call {call_id}")
            if call.outcome is not CallOutcome.answered:
                raise RecorderError(f"answer for call {call_id} already {call.outcome.value}")
            now = utcnow()
            order_id = session.execute(
                _insert(session)(WorkOrder)
                .values(
                    origin_call_id=call.id,
                    status=WorkOrderStatus.open,
                    description="",
                    address="",
                    citizen_name="",
                    contact_number=call.caller_number or "",
                    urgent=False,
                    confidential=False,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=[WorkOrder.origin_call_id])
                .returning(WorkOrder.id)
            ).scalar()
            if order_id is None:
                return session.execute(
                    select(WorkOrder.id).where(WorkOrder.origin_call_id == call_id)
                ).scalar_one()
            session.execute(
                _insert(session)(WorkOrderCall)
                .values(call_id=call.id, work_order_id=order_id, linked_at=now)
                .on_conflict_do_nothing(index_elements=[WorkOrderCall.call_id])
            )
            return order_id

    def call_ended(self, call_id: str, ended_at: datetime, cause: str | int | None) -> bool:
        """Record the hang-up of a call. An unanswered call that ends counts as abandoned."""
        cause_text = None if cause is None else str(cause)
        with self._sessions.begin() as session:
            ended = session.execute(
                update(Call)
                .where(Call.id == call_id, Call.ended_at.is_(None))
                .values(ended_at=ended_at, hangup_cause=cause_text)
                .returning(Call.outcome)
            ).scalar()
            if ended is None:
                return False
            if ended in _UNANSWERED:
                session.execute(update(Call).where(Call.id == call_id).values(outcome=CallOutcome.abandoned))
            return True

    def call_abandoned(self, call_id: str, ended_at: datetime, cause: str | int | None) -> bool:
        """Record that the caller hung up before being answered. Ignored for answered or ended calls."""
        cause_text = None if cause is None else str(cause)
        with self._sessions.begin() as session:
            result = session.execute(
                update(Call)
                .where(Call.id == call_id, Call.outcome.in_(_UNANSWERED), Call.ended_at.is_(None))
                .values(outcome=CallOutcome.abandoned, ended_at=ended_at, hangup_cause=cause_text)
            )
            return result.rowcount > 0

    def call_overflowed(self, call_id: str, at: datetime, destination: str, reason: str) -> bool:
        """Record that the call left its queue unanswered for ``destination`` (voicemail, callback...)."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(Call)
                .where(Call.id == call_id, Call.outcome.in_(_UNANSWERED), Call.ended_at.is_(None))
                .values(
                    outcome=CallOutcome.overflowed,
                    ended_at=at,
                    overflow_to=destination,
                    overflow_reason=reason,
                )
            )
            return result.rowcount > 0

    def recent_callers(self, since: datetime) -> list[tuple[str, datetime]]:
        """Caller numbers seen since ``since``, each with its latest enqueue time (repeat-caller priority)."""
        with self._sessions() as session:
            rows = session.execute(
                select(Call.caller_number, func.max(Call.enqueued_at))
                .where(Call.enqueued_at >= since, Call.caller_number.is_not(None), Call.caller_number != "")
                .group_by(Call.caller_number)
            )
            return [(number, at) for number, at in rows]

    def open_calls(self) -> list[OpenCall]:
        """Calls waiting, ringing or in conversation, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(Call)
                .where(
                    Call.ended_at.is_(None),
                    Call.outcome.in_((*_UNANSWERED, CallOutcome.answered)),
                )
                .order_by(Call.enqueued_at, Call.id)
            )
            return [
                OpenCall(
                    call_id=c.id,
                    queue=c.queue,
                    caller_number=c.caller_number,
                    priority=c.priority,
                    enqueued_at=c.enqueued_at,
                    outcome=c.outcome,
                    agent_id=c.agent_id,
                    answered_at=c.answered_at,
                )
                for c in rows
            ]


# --- read side -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[_T]):
    items: Sequence[_T]
    total: int


@dataclass(frozen=True, slots=True)
class CallFilter:
    outcome: CallOutcome | None = None
    queue: str | None = None
    since: datetime | None = None  # enqueued_at >= since
    until: datetime | None = None  # enqueued_at < until


def _page(
    session: Session, stmt: Select[Any], order: Sequence[ColumnElement[Any]], limit: int, offset: int
) -> Page[Any]:
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    items = session.scalars(stmt.order_by(*order).limit(limit).offset(offset)).all()
    return Page(items=items, total=total)


def list_calls(session: Session, filters: CallFilter, *, limit: int, offset: int) -> Page[Call]:
    """Calls matching ``filters``, newest first."""
    stmt = select(Call)
    if filters.outcome is not None:
        stmt = stmt.where(Call.outcome == filters.outcome)
    if filters.queue is not None:
        stmt = stmt.where(Call.queue == filters.queue)
    if filters.since is not None:
        stmt = stmt.where(Call.enqueued_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(Call.enqueued_at < filters.until)
    return _page(session, stmt, (Call.enqueued_at.desc(), Call.id.desc()), limit, offset)
