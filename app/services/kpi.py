"""The hotline's KPIs, defined once: the metrics exporter and the database reports both use this.

A call counts when its fate in the queue is known: **answered** (an agent picked up), **abandoned**
(the caller hung up first) or **overflowed** (sent on to voicemail, a callback request or a message
after the queue's max wait, or because no agent was there). Calls still waiting or ringing are not
counted yet, so numerator and denominator of every rate move together. A caller who hangs up within
``short_abandon_seconds`` of queueing is a **short abandon**; whether it counts as offered and
abandoned is the center's choice (``exclude_short_abandons``), and it is counted apart either way.

* offered = answered + abandoned + overflowed (+ short abandons unless excluded)
* connection rate = answered / offered
* service level (N-second connection rate) = answered with wait <= N s / offered (N per queue)
* abandonment rate = abandoned / offered
* ASA = mean wait of answered calls (queue entry to answer)
* AHT = mean talk time (answer to hang-up) of answered calls that ended
* acceptance rate = (appeals accepted + answered directly) / (answered − not an appeal): the share
  of the citizens who reached a person whose appeal was taken in. Orders still open (intake not
  submitted) count in the denominator only: an appeal not yet recorded is not accepted.

Waits are measured from the moment the call entered the queue (after the greeting).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from acd.queues_config import DEFAULT_SERVICE_LEVEL, QueueConfig
from app.db.models import Call, CallOutcome, Disposition, WorkOrder
from app.settings import Settings

#: The 15-second standard (GB/T 33358-2016): always a bucket edge of the wait histogram.
NATIONAL_SERVICE_LEVEL_SECONDS = DEFAULT_SERVICE_LEVEL


class Fate(StrEnum):
    """How a call left the queue, as the KPIs count it."""

    ANSWERED = "answered"
    ABANDONED = "abandoned"
    SHORT_ABANDONED = "short_abandoned"  # a short abandon the center leaves out of offered
    OVERFLOWED = "overflowed"  # sent on unanswered: voicemail, callback request, message


#: The outcomes the wait histogram distinguishes (an overflowed call's wait is the queue's max wait).
WAIT_FATES = (Fate.ANSWERED, Fate.ABANDONED, Fate.SHORT_ABANDONED)


@dataclass(frozen=True, slots=True)
class Counted:
    """How one decided call counts: the rules, in one place, for the reports and the metrics."""

    fate: Fate
    wait: float  # queue entry to answer, hang-up or overflow
    offered: bool
    in_service_level: bool
    short_abandon: bool  # counted apart whether or not it is offered


@dataclass(frozen=True, slots=True)
class KpiDefinitions:
    """The configurable parts of the KPI definitions.

    The N of a queue's N-second rate is the queue's own ``service_level`` (the queues file): the
    one setting ``/queues``, the metrics, the reports and the wallboard all use. A queue no longer
    configured is measured with the default N.
    """

    service_level_seconds: float = DEFAULT_SERVICE_LEVEL  # for queues not (or no longer) configured
    queue_service_level_seconds: Mapping[str, float] = field(default_factory=dict)
    short_abandon_seconds: float = 5.0
    exclude_short_abandons: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, queues: Iterable[QueueConfig] = ()) -> KpiDefinitions:
        return cls(
            queue_service_level_seconds={q.name: q.service_level for q in queues},
            short_abandon_seconds=settings.kpi_short_abandon_seconds,
            exclude_short_abandons=settings.kpi_exclude_short_abandons,
        )

    def with_queues(self, queues: Iterable[QueueConfig]) -> KpiDefinitions:
        """The same definitions for a reloaded queue configuration."""
        return replace(self, queue_service_level_seconds={q.name: q.service_level for q in queues})

    def threshold(self, queue: str) -> float:
        """N of the queue's N-second connection rate."""
        return self.queue_service_level_seconds.get(queue, self.service_level_seconds)

    def is_short_abandon(self, wait: float) -> bool:
        return wait < self.short_abandon_seconds

    def abandon_fate(self, wait: float) -> Fate:
        if self.exclude_short_abandons and self.is_short_abandon(wait):
            return Fate.SHORT_ABANDONED
        return Fate.ABANDONED

    def in_service_level(self, queue: str, wait: float) -> bool:
        return wait <= self.threshold(queue)

    def count(self, queue: str, outcome: CallOutcome, wait: float) -> Counted | None:
        """How a call of ``queue`` that left it with ``outcome`` after ``wait`` seconds counts.

        ``None`` for an outcome that is not a fate yet (waiting, ringing).
        """
        if outcome is CallOutcome.answered:
            return Counted(Fate.ANSWERED, wait, True, self.in_service_level(queue, wait), False)
        if outcome is CallOutcome.abandoned:
            fate = self.abandon_fate(wait)
            return Counted(fate, wait, fate is Fate.ABANDONED, False, self.is_short_abandon(wait))
        if outcome is CallOutcome.overflowed:
            return Counted(Fate.OVERFLOWED, wait, True, False, False)
        return None

    def describe(self) -> dict[str, object]:
        return {
            "service_level_seconds": self.service_level_seconds,
            "queue_service_level_seconds": dict(self.queue_service_level_seconds),
            "short_abandon_seconds": self.short_abandon_seconds,
            "exclude_short_abandons": self.exclude_short_abandons,
        }


@dataclass(slots=True)
class KpiTotals:
    """Counts and sums for one period; the rates are derived from them."""

    offered: int = 0
    answered: int = 0
    answered_in_service_level: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    tickets_opened: int = 0
    accepted: int = 0  # work orders submitted as an appeal
    answered_directly: int = 0
    not_an_appeal: int = 0
    answered_wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    calls_ended_after_answer: int = 0

    def add(self, counted: Counted, ticket: bool = False, disposition: Disposition | None = None) -> None:
        """Count one decided call (see :meth:`KpiDefinitions.count`), with its work order's disposition."""
        self.offered += counted.offered
        self.short_abandoned += counted.short_abandon
        if counted.fate is Fate.ANSWERED:
            self.answered += 1
            self.answered_in_service_level += counted.in_service_level
            self.answered_wait_seconds += counted.wait
            self.tickets_opened += ticket
            self.accepted += disposition is Disposition.accepted
            self.answered_directly += disposition is Disposition.answered_directly
            self.not_an_appeal += disposition is Disposition.not_an_appeal
        elif counted.fate is Fate.ABANDONED:
            self.abandoned += 1
        elif counted.fate is Fate.OVERFLOWED:
            self.overflowed += 1  # offered and not connected: the citizen did not reach a person

    def add_talk(self, seconds: float) -> None:
        self.talk_seconds += seconds
        self.calls_ended_after_answer += 1

    @staticmethod
    def _ratio(numerator: float, denominator: float) -> float | None:
        return numerator / denominator if denominator else None

    @property
    def connection_rate(self) -> float | None:
        return self._ratio(self.answered, self.offered)

    @property
    def service_level_rate(self) -> float | None:
        return self._ratio(self.answered_in_service_level, self.offered)

    @property
    def abandonment_rate(self) -> float | None:
        return self._ratio(self.abandoned, self.offered)

    @property
    def asa_seconds(self) -> float | None:
        return self._ratio(self.answered_wait_seconds, self.answered)

    @property
    def aht_seconds(self) -> float | None:
        return self._ratio(self.talk_seconds, self.calls_ended_after_answer)

    @property
    def acceptance_rate(self) -> float | None:
        return self._ratio(self.accepted + self.answered_directly, self.answered - self.not_an_appeal)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_in_service_level": self.answered_in_service_level,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "overflowed": self.overflowed,
            "tickets_opened": self.tickets_opened,
            "accepted": self.accepted,
            "answered_directly": self.answered_directly,
            "not_an_appeal": self.not_an_appeal,
            "connection_rate": self.connection_rate,
            "service_level_rate": self.service_level_rate,
            "abandonment_rate": self.abandonment_rate,
            "asa_seconds": self.asa_seconds,
            "aht_seconds": self.aht_seconds,
            "acceptance_rate": self.acceptance_rate,
        }


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"


#: The longest period a report covers, per interval (bounds the rows one request produces).
MAX_SPAN = {Interval.HOUR: timedelta(days=31), Interval.DAY: timedelta(days=366)}


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the KPIs need of one decided call."""

    queue: str
    outcome: CallOutcome
    enqueued_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    has_ticket: bool
    disposition: Disposition | None = None  # of its work order, once submitted


def add_call(totals: KpiTotals, call: CallFacts, definitions: KpiDefinitions) -> None:
    """Count one call into ``totals`` by the same rules the live metrics use."""
    left_at = call.answered_at if call.outcome is CallOutcome.answered else call.ended_at
    if left_at is None:
        if call.outcome is not CallOutcome.overflowed:
            return
        left_at = call.enqueued_at
    counted = definitions.count(call.queue, call.outcome, (left_at - call.enqueued_at).total_seconds())
    if counted is None:
        return
    totals.add(counted, call.has_ticket, call.disposition)
    if counted.fate is Fate.ANSWERED and call.ended_at is not None and call.answered_at is not None:
        totals.add_talk((call.ended_at - call.answered_at).total_seconds())


def decided_calls(
    session: Session, since: datetime, until: datetime, queue: str | None = None
) -> Iterator[CallFacts]:
    """Answered and abandoned calls that entered a queue in ``[since, until)``."""
    stmt = (
        select(
            Call.queue,
            Call.outcome,
            Call.enqueued_at,
            Call.answered_at,
            Call.ended_at,
            WorkOrder.id.is_not(None),
            WorkOrder.disposition,
        )
        .outerjoin(WorkOrder, WorkOrder.origin_call_id == Call.id)
        .where(
            Call.enqueued_at >= since,
            Call.enqueued_at < until,
            Call.outcome.in_((CallOutcome.answered, CallOutcome.abandoned, CallOutcome.overflowed)),
        )
    )
    if queue is not None:
        stmt = stmt.where(Call.queue == queue)
    for queue_name, outcome, enqueued_at, answered_at, ended_at, has_ticket, disposition in session.execute(
        stmt.execution_options(yield_per=1000)
    ):
        yield CallFacts(
            queue_name, outcome, enqueued_at, answered_at, ended_at, bool(has_ticket), disposition
        )


def bucket_start(moment: datetime, interval: Interval, zone: tzinfo) -> datetime:
    """The start of the local hour or day ``moment`` falls in."""
    local = moment.astimezone(zone)
    if interval is Interval.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_bucket(start: datetime, interval: Interval, zone: tzinfo) -> datetime:
    if interval is Interval.HOUR:
        # Step in UTC: local hours may repeat or vanish at a daylight-saving change.
        return (start + timedelta(hours=1)).astimezone(zone)
    day = start.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=zone)


@dataclass(frozen=True, slots=True)
class KpiRow:
    start: datetime
    end: datetime
    totals: KpiTotals


@dataclass(frozen=True, slots=True)
class KpiReport:
    since: datetime
    until: datetime
    interval: Interval
    timezone: str
    rows: list[KpiRow]
    total: KpiTotals


def kpi_report(
    calls: Iterable[CallFacts],
    definitions: KpiDefinitions,
    since: datetime,
    until: datetime,
    interval: Interval,
    timezone: str,
) -> KpiReport:
    """KPIs per local hour or day over ``[since, until)``, every period listed even when empty."""
    zone = ZoneInfo(timezone)
    rows: dict[datetime, KpiRow] = {}
    start = bucket_start(since, interval, zone)
    while start < until:
        end = _next_bucket(start, interval, zone)
        rows[start] = KpiRow(
            max(start, since.astimezone(zone)), min(end, until.astimezone(zone)), KpiTotals()
        )
        start = end
    total = KpiTotals()
    for call in calls:
        add_call(rows[bucket_start(call.enqueued_at, interval, zone)].totals, call, definitions)
        add_call(total, call, definitions)
    return KpiReport(since, until, interval, timezone, list(rows.values()), total)


CSV_COLUMNS = ("start", "end", *KpiTotals().as_dict())


def report_csv(report: KpiReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in [*report.rows, KpiRow(report.since, report.until, report.total)]:
        values = row.totals.as_dict().values()
        writer.writerow(
            [row.start.isoformat(), row.end.isoformat(), *("" if v is None else _fmt(v) for v in values)]
        )
    return out.getvalue()


def _fmt(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"


def today_bounds(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The center's current local day, as ``[midnight, next midnight)``."""
    zone = ZoneInfo(timezone)
    start = bucket_start(now, Interval.DAY, zone)
    return start, _next_bucket(start, Interval.DAY, zone)


def today_totals(session: Session, definitions: KpiDefinitions, now: datetime, timezone: str) -> KpiTotals:
    """Today's KPIs (the wallboard's tiles): calls that entered a queue since local midnight."""
    since, until = today_bounds(now, timezone)
    totals = KpiTotals()
    for call in decided_calls(session, since, until):
        add_call(totals, call, definitions)
    return totals
