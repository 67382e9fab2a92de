"""Relational schema (SQLAlchemy 2 typed declarative).

Every timestamp is an aware UTC ``datetime`` in Python. PostgreSQL stores ``timestamptz``; SQLite
has no time zone type, so :class:`UTCDateTime` stores UTC wall-clock text and re-attaches UTC on
the way out. Changing anything here needs a new revision under ``app/migrations/versions``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Role(enum.StrEnum):
    """User roles, in increasing order of privilege."""

    agent = "agent"
    supervisor = "supervisor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_ORDER.index(self)


_ROLE_ORDER = (Role.agent, Role.supervisor, Role.admin)


class CallOutcome(enum.StrEnum):
    waiting = "waiting"
    ringing = "ringing"
    answered = "answered"
    abandoned = "abandoned"
    overflowed = "overflowed"  # left its queue unanswered for voicemail, a callback request or a message


class WorkOrderStatus(enum.StrEnum):
    """Where a work order is in the loop; only the acceptance step exists so far."""

    open = "open"  # intake in progress: the agent of the call may still edit it
    accepted = "accepted"  # submitted as an appeal: goes on to dispatch
    closed = "closed"  # submitted as answered directly, or as not an appeal


#: Kept for ``/api/v1/tickets``, the older name of work orders.
TicketStatus = WorkOrderStatus


class Disposition(enum.StrEnum):
    """What the agent decided the call was (the acceptance step of the 12345 loop)."""

    accepted = "accepted"  # accepted as an appeal
    answered_directly = "answered_directly"  # answered on the call (optionally citing an article)
    not_an_appeal = "not_an_appeal"  # silent call, wrong number, prank, test


class NonAppealKind(enum.StrEnum):
    silent = "silent"
    wrong_number = "wrong_number"
    prank = "prank"
    test = "test"


class BusyRequestStatus(enum.StrEnum):
    pending = "pending"
    approved = "approved"
    denied = "denied"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always an aware UTC datetime on the Python side.

    Naive datetimes are refused rather than guessed at: a call-center's records span time zones
    (servers, agents, Asterisk) and a silent guess is a wrong report later.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite's DATETIME text drops the offset; store UTC wall-clock so ordering and
            # comparisons on the text stay correct.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _str_enum(enum_cls: type[enum.StrEnum], name: str) -> Enum:
    # VARCHAR + CHECK rather than a native PG enum: adding a value later is a constraint swap
    # that works the same way on both backends.
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Agent(Base):
    """An agent and its profile (see ``acd.views.AgentProfile``); the PIN only as a salted hash."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every queue
    skills: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # skill -> level 1-5
    sort_order: Mapped[int] = mapped_column(Integer, default=0)  # top-down / round-robin place
    pin_hash: Mapped[str | None] = mapped_column(String(200))  # feature-code login at a phone


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_str_enum(Role, "role"))
    agent_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("agents.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Call(Base):
    """One caller channel's passage through a queue; ``id`` is the channel's Asterisk Uniqueid."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), index=True)
    caller_number: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    agent_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("agents.id"), index=True)
    outcome: Mapped[CallOutcome] = mapped_column(_str_enum(CallOutcome, "outcome"), index=True)
    hangup_cause: Mapped[str | None] = mapped_column(String(64))
    overflow_to: Mapped[str | None] = mapped_column(String(64))  # e.g. "callback", "voicemail:12345"
    overflow_reason: Mapped[str | None] = mapped_column(String(20))  # max_wait | no_agents


class WorkOrder(Base):
    """A citizen's appeal as recorded by the agent: what, where, who, and what happens next.

    It is not a call record: the call(s) it came from are in :class:`WorkOrderCall`, and the call's
    numbers and times stay on :class:`Call`. ``origin_call_id`` is the answered call that opened it
    (unique: one order per answered call, opened at answer time). ``version`` counts changes, so an
    edit based on an older read is refused instead of overwriting someone else's.
    """

    __tablename__ = "work_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin_call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id"), unique=True)
    status: Mapped[WorkOrderStatus] = mapped_column(_str_enum(WorkOrderStatus, "status"), index=True)
    disposition: Mapped[Disposition | None] = mapped_column(_str_enum(Disposition, "disposition"), index=True)
    non_appeal_kind: Mapped[NonAppealKind | None] = mapped_column(_str_enum(NonAppealKind, "non_appeal_kind"))
    category: Mapped[str | None] = mapped_column(String(32), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(500), default="")
    district: Mapped[str | None] = mapped_column(String(32))
    citizen_name: Mapped[str] = mapped_column(String(100), default="")
    contact_number: Mapped[str] = mapped_column(String(64), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    knowledge_article_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("knowledge_articles.id"))
    department: Mapped[str | None] = mapped_column(String(100))  # to be dispatched to (the category's)
    deadline_at: Mapped[datetime | None]  # handling deadline, set on acceptance
    submitted_at: Mapped[datetime | None]
    submitted_by: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class WorkOrderCall(Base):
    """A call that belongs to a work order: the one that opened it, and repeat calls merged into it."""

    __tablename__ = "work_order_calls"

    call_id: Mapped[str] = mapped_column(String(64), ForeignKey("calls.id"), primary_key=True)
    work_order_id: Mapped[int] = mapped_column(Integer, ForeignKey("work_orders.id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeArticle(Base):
    """An article of the knowledge base agents answer from (managed by supervisors).

    ``search_text`` is the title and body cut into search terms (CJK bigrams, words): what the
    full-text index of each backend indexes (see app/services/knowledge.py).
    """

    __tablename__ = "knowledge_articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(32), index=True)
    department: Mapped[str | None] = mapped_column(String(100))
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    search_text: Mapped[str] = mapped_column(Text, default="")
    updated_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentTransition(Base):
    """One presence change (append-only): who, when, from, to, why, and who caused it."""

    __tablename__ = "agent_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(64))
    cause: Mapped[str] = mapped_column(String(20))  # agent, supervisor, system
    actor: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str | None] = mapped_column(String(64))  # the phone the agent sat at, to restore it
    # the storage write that made the row: a replayed write (app/services/journal.py) adds it once
    write_id: Mapped[str | None] = mapped_column(String(32), unique=True)


class ComplianceEntry(Base):
    """The incident log (append-only, hash-chained; see app/services/compliance.py).

    An incident is the ``opened`` entry plus at most one ``closed`` entry, and any number of
    ``acknowledged`` entries (a supervisor's comment); all three carry the incident's columns so each
    entry can be read, and hashed, on its own. ``seq`` numbers entries 1, 2, 3... without gaps.
    """

    __tablename__ = "compliance_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    entry: Mapped[str] = mapped_column(String(20))  # opened, closed, acknowledged
    incident_id: Mapped[str] = mapped_column(String(40), index=True)
    agent_id: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash_version: Mapped[int] = mapped_column(Integer, server_default="1")  # how ``hash`` reads the entry


class ComplianceChainHead(Base):
    """The single row that serializes appends to the incident log and names its last hash."""

    __tablename__ = "compliance_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class BusyRequest(Base):
    """An agent's request to go busy with a reason that needs a supervisor's approval."""

    __tablename__ = "busy_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    requested_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[BusyRequestStatus] = mapped_column(_str_enum(BusyRequestStatus, "status"), index=True)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
