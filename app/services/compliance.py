"""Storage of presence and compliance: transitions, the incident log, busy requests, reports.

The incident log is append-only and tamper-evident. Every entry (an incident opened, closed, or
acknowledged by a supervisor) gets the next number ``seq`` (1, 2, 3... without gaps) and
``hash = sha256(prev_hash + canonical JSON of the entry)``, where ``prev_hash`` is the previous
entry's hash (64 zeros for the first). Appends are serialized through the one row of
``compliance_chain``, which is updated first in each appending transaction: on PostgreSQL that row
lock orders concurrent writers, on SQLite the write lock does. :func:`verify_chain` recomputes the
chain: an edited entry breaks its own hash, a deleted one leaves a gap in ``seq`` and a broken link,
a rewritten tail no longer matches a head hash copied elsewhere earlier. Tamper-*evident*, not
tamper-proof: someone able to rewrite the whole table can recompute every hash, so keep copies of
the head hash (``GET /api/v1/compliance/verify``, the daily report) outside the database, and grant
the service's database user no UPDATE/DELETE on ``compliance_log`` in production.

All functions are synchronous and safe to call from any thread.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from agents.compliance import IncidentClosed, IncidentKind, IncidentOpened
from agents.presence import AgentState, Cause, Transition
from agents.report import StateTotals, state_totals
from app.db.models import Agent, AgentTransition, ComplianceChainHead, ComplianceEntry

GENESIS = "0" * 64
OPENED, CLOSED, ACKNOWLEDGED = "opened", "closed", "acknowledged"


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value is not None else None


#: How :func:`entry_hash` reads an entry. Version 1 (entries written before it) formatted the duration
#: with 3 decimals, so a change below a millisecond went unnoticed; version 2 hashes the stored value
#: exactly (and its own version). Each entry records the version it was hashed with.
HASH_VERSION = 2


def _duration_text(entry: ComplianceEntry) -> str | None:
    if entry.duration_seconds is None:
        return None
    if entry.hash_version == 1:
        return f"{entry.duration_seconds:.3f}"
    return repr(float(entry.duration_seconds))  # the shortest text that reads back as the same float


def entry_hash(entry: ComplianceEntry) -> str:
    """The hash of an entry: over its previous hash and every column but ``hash`` itself."""
    body: dict[str, object] = {
        "seq": entry.seq,
        "entry": entry.entry,
        "incident_id": entry.incident_id,
        "agent_id": entry.agent_id,
        "kind": entry.kind,
        "reason": entry.reason,
        "started_at": _iso(entry.started_at),
        "ended_at": _iso(entry.ended_at),
        "duration_seconds": _duration_text(entry),
        "actor": entry.actor,
        "comment": entry.comment,
        "recorded_at": _iso(entry.recorded_at),
    }
    if entry.hash_version != 1:
        body["hash_version"] = entry.hash_version
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((entry.prev_hash + canonical).encode()).hexdigest()


def lock_chain(session: Session) -> None:
    """Take the log's append lock now (PostgreSQL: the head row; SQLite: the write lock), before reading."""
    session.execute(
        update(ComplianceChainHead)
        .where(ComplianceChainHead.id == 1)
        .values(last_seq=ComplianceChainHead.last_seq)
    )


def append_entry(session: Session, entry: ComplianceEntry) -> ComplianceEntry:
    """Number, chain and insert ``entry`` inside the caller's transaction."""
    bump = update(ComplianceChainHead).where(ComplianceChainHead.id == 1)
    if session.execute(bump.values(last_seq=ComplianceChainHead.last_seq + 1)).rowcount == 0:
        # The head row comes with the migration; recreate it if someone emptied the tables.
        session.add(ComplianceChainHead(id=1, last_seq=1, last_hash=GENESIS))
        session.flush()
    head = session.get(ComplianceChainHead, 1, populate_existing=True)
    assert head is not None
    entry.seq = head.last_seq
    entry.prev_hash = head.last_hash
    entry.hash_version = HASH_VERSION
    entry.hash = entry_hash(entry)
    head.last_hash = entry.hash
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    entries: int
    head_hash: str
    problem: str = ""  # the first one found, naming its seq


def verify_chain(session: Session) -> ChainCheck:
    """Recompute every hash and link of the incident log, oldest first."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in session.scalars(select(ComplianceEntry).order_by(ComplianceEntry.seq)):
        if entry.seq != expected_seq:
            return ChainCheck(False, count, prev, f"entry {expected_seq} is missing (next is {entry.seq})")
        if entry.prev_hash != prev:
            return ChainCheck(False, count, prev, f"entry {entry.seq} does not link to entry {entry.seq - 1}")
        if entry_hash(entry) != entry.hash:
            return ChainCheck(False, count, prev, f"entry {entry.seq} was altered")
        prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    head = session.get(ComplianceChainHead, 1)
    if head is not None and (head.last_seq, head.last_hash) != (count, prev):
        return ChainCheck(False, count, prev, f"the log ends at entry {count}, its head says {head.last_seq}")
    return ChainCheck(True, count, prev)


# -- views ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    by: str
    at: datetime
    comment: str


@dataclass(slots=True)
class IncidentView:
    id: str
    agent_id: str
    kind: str
    reason: str
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: float  # so far, when still open
    open: bool
    acknowledgements: list[Acknowledgement] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    agent_id: str | None = None
    kind: str | None = None
    since: datetime | None = None  # incidents that began in [since, until)
    until: datetime | None = None
    open_only: bool = False


class ComplianceStore:
    """Writes (from the service's storage writer or the API) and reads (the API)."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._sessions = session_factory

    # -- writes -----------------------------------------------------------------------------------

    def record_transition(
        self, t: Transition, endpoint: str | None = None, write_id: str | None = None
    ) -> None:
        """Store a transition; with ``write_id`` (unique) a replayed write stores it only once."""
        try:
            with self._sessions.begin() as session:
                session.add(
                    AgentTransition(
                        agent_id=t.agent_id,
                        at=utc(t.at),
                        from_state=t.from_state.value,
                        to_state=t.to_state.value,
                        reason=t.reason,
                        cause=t.cause.value,
                        actor=t.actor,
                        endpoint=endpoint,
                        write_id=write_id,
                    )
                )
        except IntegrityError:
            if write_id is None:
                raise
            # the only constraint of the table: this write was made before

    def last_states(self) -> list[AgentTransition]:
        """Each agent's latest transition: where presence stood when the previous run ended."""
        latest = (
            select(AgentTransition.agent_id, func.max(AgentTransition.id).label("id"))
            .group_by(AgentTransition.agent_id)
            .subquery()
        )
        with self._sessions() as session:
            return list(
                session.scalars(select(AgentTransition).join(latest, AgentTransition.id == latest.c.id))
            )

    def record_opened(self, incident: IncidentOpened) -> None:
        """Append the ``opened`` entry; idempotent (a replayed write finds it there)."""
        with self._sessions.begin() as session:
            lock_chain(session)
            if self._has_entry(session, incident.incident_id, OPENED):
                return
            append_entry(
                session,
                ComplianceEntry(
                    entry=OPENED,
                    incident_id=incident.incident_id,
                    agent_id=incident.agent_id,
                    kind=incident.kind.value,
                    reason=incident.reason,
                    started_at=utc(incident.started_at),
                    ended_at=None,
                    duration_seconds=None,
                    actor="system",
                    comment="",
                    recorded_at=utc(incident.detected_at),
                ),
            )

    def record_closed(self, incident: IncidentClosed, comment: str = "") -> None:
        """Append the ``closed`` entry, duration as computed; idempotent like :meth:`record_opened`."""
        with self._sessions.begin() as session:
            lock_chain(session)
            if self._has_entry(session, incident.incident_id, CLOSED):
                return
            append_entry(
                session,
                ComplianceEntry(
                    entry=CLOSED,
                    incident_id=incident.incident_id,
                    agent_id=incident.agent_id,
                    kind=incident.kind.value,
                    reason=incident.reason,
                    started_at=utc(incident.started_at),
                    ended_at=utc(incident.ended_at),
                    duration_seconds=incident.duration,
                    actor="system",
                    comment=comment,
                    recorded_at=utc(incident.ended_at),
                ),
            )

    def acknowledge(self, incident_id: str, by: str, comment: str, at: datetime) -> IncidentView | None:
        """Append a supervisor's acknowledgement; ``None`` if there is no such incident."""
        with self._sessions.begin() as session:
            opened = session.scalar(
                select(ComplianceEntry).where(
                    ComplianceEntry.incident_id == incident_id, ComplianceEntry.entry == OPENED
                )
            )
            if opened is None:
                return None
            append_entry(
                session,
                ComplianceEntry(
                    entry=ACKNOWLEDGED,
                    incident_id=incident_id,
                    agent_id=opened.agent_id,
                    kind=opened.kind,
                    reason=opened.reason,
                    started_at=opened.started_at,
                    ended_at=None,
                    duration_seconds=None,
                    actor=by,
                    comment=comment,
                    recorded_at=at,
                ),
            )
            return self._fold(session, [opened], at)[0]

    def dangling(self) -> list[IncidentOpened]:
        """Incidents left open by an earlier run of the service, oldest first."""
        with self._sessions() as session:
            return [
                IncidentOpened(
                    e.incident_id,
                    e.agent_id,
                    IncidentKind(e.kind),
                    e.reason,
                    e.started_at.timestamp(),
                    e.recorded_at.timestamp(),
                )
                for e in self._open_entries(session)
            ]

    def close_dangling(self, incidents: Iterable[IncidentOpened], at: float) -> None:
        """Close incidents whose run ended (their state died with it) at ``at``, saying so."""
        for opened in incidents:
            closed = IncidentClosed(
                opened.incident_id,
                opened.agent_id,
                opened.kind,
                opened.reason,
                opened.started_at,
                max(at, opened.started_at),
            )
            self.record_closed(closed, comment="closed at service start: the previous run ended")

    # -- reads ------------------------------------------------------------------------------------

    def incidents(
        self, flt: IncidentFilter, now: datetime, limit: int = 50, offset: int = 0
    ) -> list[IncidentView]:
        with self._sessions() as session:
            query = select(ComplianceEntry).where(ComplianceEntry.entry == OPENED)
            if flt.agent_id is not None:
                query = query.where(ComplianceEntry.agent_id == flt.agent_id)
            if flt.kind is not None:
                query = query.where(ComplianceEntry.kind == flt.kind)
            if flt.since is not None:
                query = query.where(ComplianceEntry.started_at >= flt.since)
            if flt.until is not None:
                query = query.where(ComplianceEntry.started_at < flt.until)
            if flt.open_only:
                closed = select(ComplianceEntry.incident_id).where(ComplianceEntry.entry == CLOSED)
                query = query.where(ComplianceEntry.incident_id.not_in(closed))
            query = query.order_by(ComplianceEntry.started_at.desc(), ComplianceEntry.seq.desc())
            opened = list(session.scalars(query.limit(limit).offset(offset)))
            return self._fold(session, opened, now)

    def incident(self, incident_id: str, now: datetime) -> IncidentView | None:
        with self._sessions() as session:
            opened = session.scalar(
                select(ComplianceEntry).where(
                    ComplianceEntry.incident_id == incident_id, ComplianceEntry.entry == OPENED
                )
            )
            return self._fold(session, [opened], now)[0] if opened is not None else None

    def history(
        self, agent_id: str, since: datetime | None, until: datetime | None, limit: int, offset: int
    ) -> list[AgentTransition]:
        with self._sessions() as session:
            query = select(AgentTransition).where(AgentTransition.agent_id == agent_id)
            if since is not None:
                query = query.where(AgentTransition.at >= since)
            if until is not None:
                query = query.where(AgentTransition.at < until)
            query = query.order_by(AgentTransition.at.desc(), AgentTransition.id.desc())
            return list(session.scalars(query.limit(limit).offset(offset)))

    def verify(self) -> ChainCheck:
        with self._sessions() as session:
            return verify_chain(session)

    def daily(
        self, day: date, tz: ZoneInfo, now: datetime, agent_ids: Sequence[str] | None
    ) -> list[DailyRow]:
        """The agent log of ``day`` (local to ``tz``), per agent; ``agent_ids=None``: every agent."""
        start = datetime.combine(day, time(0), tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
        window_end = min(end, max(now, start))
        with self._sessions() as session:
            if agent_ids is None:
                known = set(session.scalars(select(Agent.id)))
                known |= set(
                    session.scalars(
                        select(AgentTransition.agent_id)
                        .where(AgentTransition.at >= start, AgentTransition.at < end)
                        .distinct()
                    )
                )
                agent_ids = sorted(known)
            rows = []
            for agent_id in agent_ids:
                transitions = self._transitions_for_window(session, agent_id, start, end)
                totals = state_totals(transitions, start.timestamp(), window_end.timestamp())
                incidents = self._fold(
                    session,
                    list(
                        session.scalars(
                            select(ComplianceEntry).where(
                                ComplianceEntry.agent_id == agent_id,
                                ComplianceEntry.entry == OPENED,
                                ComplianceEntry.started_at >= start,
                                ComplianceEntry.started_at < end,
                            )
                        )
                    ),
                    now,
                )
                by_kind: dict[str, dict[str, float]] = {}
                for incident in incidents:
                    slot = by_kind.setdefault(incident.kind, {"count": 0, "seconds": 0.0})
                    slot["count"] += 1
                    slot["seconds"] = round(slot["seconds"] + incident.duration_seconds, 3)
                rows.append(DailyRow(agent_id, start, end, totals, by_kind))
            return rows

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    def _transitions_for_window(
        session: Session, agent_id: str, start: datetime, end: datetime
    ) -> list[Transition]:
        before = session.scalar(
            select(AgentTransition)
            .where(AgentTransition.agent_id == agent_id, AgentTransition.at < start)
            .order_by(AgentTransition.at.desc(), AgentTransition.id.desc())
            .limit(1)
        )
        inside = session.scalars(
            select(AgentTransition)
            .where(
                AgentTransition.agent_id == agent_id, AgentTransition.at >= start, AgentTransition.at < end
            )
            .order_by(AgentTransition.at, AgentTransition.id)
        )
        rows = ([before] if before is not None else []) + list(inside)
        return [
            Transition(
                r.agent_id,
                r.at.timestamp(),
                AgentState(r.from_state),
                AgentState(r.to_state),
                r.reason,
                Cause(r.cause),
                r.actor,
            )
            for r in rows
        ]

    @staticmethod
    def _has_entry(session: Session, incident_id: str, entry: str) -> bool:
        found = select(ComplianceEntry.seq).where(
            ComplianceEntry.incident_id == incident_id, ComplianceEntry.entry == entry
        )
        return session.scalar(found.limit(1)) is not None

    @staticmethod
    def _open_entries(session: Session) -> list[ComplianceEntry]:
        closed = select(ComplianceEntry.incident_id).where(ComplianceEntry.entry == CLOSED)
        return list(
            session.scalars(
                select(ComplianceEntry)
                .where(ComplianceEntry.entry == OPENED, ComplianceEntry.incident_id.not_in(closed))
                .order_by(ComplianceEntry.seq)
            )
        )

    @staticmethod
    def _fold(session: Session, opened: list[ComplianceEntry], now: datetime) -> list[IncidentView]:
        views = {
            e.incident_id: IncidentView(
                id=e.incident_id,
                agent_id=e.agent_id,
                kind=e.kind,
                reason=e.reason,
                started_at=e.started_at,
                ended_at=None,
                duration_seconds=round(max(0.0, (now - e.started_at).total_seconds()), 3),
                open=True,
            )
            for e in opened
        }
        if not views:
            return []
        later = session.scalars(
            select(ComplianceEntry)
            .where(ComplianceEntry.incident_id.in_(views), ComplianceEntry.entry != OPENED)
            .order_by(ComplianceEntry.seq)
        )
        for e in later:
            view = views[e.incident_id]
            if e.entry == CLOSED:
                view.ended_at, view.open = e.ended_at, False
                view.duration_seconds = e.duration_seconds or 0.0
            elif e.entry == ACKNOWLEDGED:
                view.acknowledgements.append(Acknowledgement(e.actor, e.recorded_at, e.comment))
        return [views[e.incident_id] for e in opened]


@dataclass(frozen=True, slots=True)
class DailyRow:
    agent_id: str
    start: datetime
    end: datetime
    totals: StateTotals
    incidents: dict[str, dict[str, float]]  # kind -> {"count", "seconds"}


CSV_COLUMNS = (
    "id",
    "agent_id",
    "kind",
    "reason",
    "started_at",
    "ended_at",
    "duration_seconds",
    "open",
    "acknowledged_by",
    "comments",
)


def _cell(text: str) -> str:
    # A cell starting like a formula is run by spreadsheets (CSV injection): make it plain text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def incidents_csv(incidents: Iterable[IncidentView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for i in incidents:
        writer.writerow(
            [
                i.id,
                i.agent_id,
                i.kind,
                i.reason,
                _iso(i.started_at),
                _iso(i.ended_at) or "",
                f"{i.duration_seconds:.3f}",
                "yes" if i.open else "no",
                _cell("; ".join(a.by for a in i.acknowledgements)),
                _cell(" | ".join(a.comment for a in i.acknowledgements)),
            ]
        )
    return out.getvalue()
