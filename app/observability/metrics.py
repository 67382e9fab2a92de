"""Prometheus metrics of the hotline, fed by the core's notifications.

Counters follow the core's notifications (``acd.commands``), never raw AMI events: the core ignores
replayed events after an AMI reconnect, so nothing is counted twice. A call is counted once, when its
fate is known (see :mod:`app.services.kpi`), under the queue it entered (as its database record says,
even if it overflowed into another queue later). Gauges (waiting calls, agents by state, the AMI link)
are read from the running core at scrape time, on the event loop.

Label values are bounded: queue names from the configuration (any other becomes ``other``), agent
states, outcomes and incident kinds from fixed sets. No caller numbers and no agent ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from acd import commands as cmd
from acd.center import Output
from acd.queues_config import DestinationKind
from acd.views import CenterSnapshot
from agents.compliance import IncidentKind
from agents.presence import AgentState
from app.db.models import CallOutcome, Disposition
from app.services.kpi import NATIONAL_SERVICE_LEVEL_SECONDS, WAIT_FATES, Counted, Fate, KpiDefinitions
from app.settings import Settings

OTHER_QUEUE = "other"
WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
TALK_BUCKETS = (15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)


OTHER_KIND = "other"  # the label of an incident kind this exporter does not know

#: KPI targets exported as ``hotline_kpi_target{kpi}`` so alert rules follow the configuration.
TARGET_KPIS = ("connection_rate", "service_level_rate", "abandonment_rate", "oldest_wait_seconds")


class LinkView(Protocol):
    @property
    def up(self) -> bool: ...
    @property
    def reconnects(self) -> int: ...


class WriterView(Protocol):
    failing: bool
    failures: dict[str, int]

    @property
    def backlog(self) -> int: ...
    def stalled_for(self) -> float: ...


class CenterView(Protocol):
    """What the live views read of the distribution service: the core's snapshot, and the link."""

    link: LinkView
    writer: WriterView

    def clock(self) -> float: ...
    def snapshot(self) -> CenterSnapshot: ...


class _LiveCollector(Collector):
    """Gauges read from the running core when Prometheus scrapes."""

    def __init__(self, metrics: HotlineMetrics, service: CenterView) -> None:
        self._metrics = metrics
        self._service = service

    def collect(self) -> Iterator[Metric]:
        service, label = self._service, self._metrics.queue_label
        snapshot = service.snapshot()
        now = snapshot.at
        waiting: dict[str, int] = dict.fromkeys(self._metrics.queues, 0)
        oldest: dict[str, float] = dict.fromkeys(self._metrics.queues, 0.0)
        for call in snapshot.calls:
            queue = label(call.queue)
            waiting[queue] = waiting.get(queue, 0) + 1
            oldest[queue] = max(oldest.get(queue, 0.0), now - call.enqueued_at)
        calls_waiting = GaugeMetricFamily(
            "hotline_queue_calls_waiting", "Calls waiting for an agent (incl. ringing)", labels=["queue"]
        )
        oldest_wait = GaugeMetricFamily(
            "hotline_queue_oldest_wait_seconds",
            "Wait of the longest-waiting call, 0 if none",
            labels=["queue"],
        )
        for queue in sorted(waiting):
            calls_waiting.add_metric([queue], waiting[queue])
            oldest_wait.add_metric([queue], round(oldest[queue], 3))
        yield calls_waiting
        yield oldest_wait

        by_state = dict.fromkeys((s.value for s in AgentState), 0)
        for agent in snapshot.agents:
            by_state[agent.state.value] += 1
        agents = GaugeMetricFamily("hotline_agents", "Agents by presence state", labels=["state"])
        for state, count in by_state.items():
            agents.add_metric([state], count)
        yield agents

        yield GaugeMetricFamily(
            "hotline_ami_up", "1 when the AMI link is logged in", value=int(service.link.up)
        )
        yield CounterMetricFamily(
            "hotline_ami_reconnects", "Reconnections of the AMI link", value=service.link.reconnects
        )
        yield from _storage_metrics(service.writer)


def _storage_metrics(writer: WriterView) -> Iterator[Metric]:
    """The storage writer (app/services/writer.py): what waits to be written, and what failed."""
    yield GaugeMetricFamily(
        "hotline_storage_backlog", "Storage writes queued and not yet made", value=writer.backlog
    )
    yield GaugeMetricFamily(
        "hotline_storage_write_stalled_seconds",
        "How long the write at the head of the queue has waited to be made, 0 if none",
        value=round(writer.stalled_for(), 3),
    )
    yield GaugeMetricFamily(
        "hotline_storage_writes_failing",
        "1 while the write at the head fails and is retried",
        value=int(writer.failing),
    )
    failures = CounterMetricFamily(
        "hotline_storage_write_failures",
        "Failed write attempts: outage (retried) or rejected (refused by the database, given up)",
        labels=["kind"],
    )
    for kind in ("outage", "rejected"):
        failures.add_metric([kind], writer.failures[kind])
    yield failures


class HotlineMetrics:
    """The hotline's metric families in a registry of their own, and the listener that feeds them."""

    def __init__(self, definitions: KpiDefinitions, settings: Settings, queues: Iterable[str] = ()) -> None:
        """``queues``: the configured queue names (the routing configuration), see :meth:`set_queues`."""
        self.definitions = definitions
        self.queues: tuple[str, ...] = ()
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.offered = Counter(
            "hotline_calls_offered",
            "Calls that entered a queue, counted when answered or abandoned",
            ["queue"],
            registry=reg,
        )
        self.answered = Counter(
            "hotline_calls_answered", "Calls answered by an agent", ["queue"], registry=reg
        )
        self.answered_in_sl = Counter(
            "hotline_calls_answered_in_service_level",
            "Calls answered within the queue's hotline_queue_service_level_seconds",
            ["queue"],
            registry=reg,
        )
        self.abandoned = Counter(
            "hotline_calls_abandoned",
            "Callers who hung up before an agent answered (counted abandons)",
            ["queue"],
            registry=reg,
        )
        self.overflowed = Counter(
            "hotline_calls_overflowed",
            "Calls sent on unanswered (voicemail, callback, message): max wait reached or no agents",
            ["queue"],
            registry=reg,
        )
        self.short_abandoned = Counter(
            "hotline_calls_short_abandoned",
            "Callers who hung up within the short-abandon threshold (counted or not, see README)",
            ["queue"],
            registry=reg,
        )
        edges = {*WAIT_BUCKETS, NATIONAL_SERVICE_LEVEL_SECONDS, definitions.service_level_seconds}
        edges.update(definitions.queue_service_level_seconds.values())
        if definitions.short_abandon_seconds > 0:
            edges.add(definitions.short_abandon_seconds)
        self.wait = Histogram(
            "hotline_call_wait_seconds",
            "Wait from queue entry to answer or hang-up; outcome: answered, abandoned, short_abandoned",
            ["queue", "outcome"],
            buckets=sorted(edges),
            registry=reg,
        )
        self.talk = Histogram(
            "hotline_call_talk_seconds",
            "Talk time of answered calls, answer to hang-up",
            ["queue"],
            buckets=TALK_BUCKETS,
            registry=reg,
        )
        self.tickets = Counter(
            "hotline_tickets_opened", "Work orders opened (one per answered call)", ["queue"], registry=reg
        )
        self.dispositions = Counter(
            "hotline_work_orders_submitted",
            "Work orders submitted, by disposition (the acceptance rate's parts)",
            ["queue", "disposition"],
            registry=reg,
        )
        self.incidents = Counter("hotline_agent_incidents", "Agent incidents by kind", ["kind"], registry=reg)
        self._threshold = Gauge(
            "hotline_queue_service_level_seconds",
            "N of the queue's N-second connection rate",
            ["queue"],
            registry=reg,
        )
        target = Gauge(
            "hotline_kpi_target", "Configured KPI targets (rates are ratios 0..1)", ["kpi"], registry=reg
        )
        self.pin_failures = Counter(
            "hotline_login_pin_failures",
            "Feature-code logins refused for a wrong or missing PIN",
            registry=reg,
        )
        for kind in (*IncidentKind, OTHER_KIND):
            self.incidents.labels(str(kind))
        self.set_queues(queues, definitions)
        target.labels("connection_rate").set(settings.kpi_target_connection_rate)
        target.labels("service_level_rate").set(settings.kpi_target_service_level)
        target.labels("abandonment_rate").set(settings.kpi_target_abandonment_rate)
        target.labels("oldest_wait_seconds").set(settings.kpi_max_oldest_wait_seconds)
        # call id -> the queue it entered (its database record's queue), while waiting; then talking
        self._waiting: dict[str, str] = {}
        self._talking: dict[str, str] = {}

    def set_queues(self, queues: Iterable[str], definitions: KpiDefinitions | None = None) -> None:
        """Follow the routing configuration (at start and after every reload): its queue names are
        the label values, every other queue counts as ``other``. Series of removed queues stay (the
        counters must not go back), with their last threshold."""
        if definitions is not None:
            self.definitions = definitions
        self.queues = tuple(sorted(set(queues)))
        for queue in (*self.queues, OTHER_QUEUE):
            self._threshold.labels(queue).set(self.definitions.threshold(queue))
            for counter in (
                self.offered,
                self.answered,
                self.answered_in_sl,
                self.abandoned,
                self.overflowed,
                self.tickets,
                self.short_abandoned,
                self.talk,
            ):
                counter.labels(queue)
            for fate in WAIT_FATES:
                self.wait.labels(queue, fate.value)
            for disposition in Disposition:
                self.dispositions.labels(queue, disposition.value)

    def queue_label(self, queue: str) -> str:
        return queue if queue in self.queues else OTHER_QUEUE

    def attach(self, service: CenterView) -> None:
        """Read live gauges from ``service`` at scrape time (one service per registry)."""
        self.registry.register(_LiveCollector(self, service))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def record_disposition(self, queue: str, disposition: str) -> None:
        """Count a work order submitted (by this process's API) with its disposition."""
        self.dispositions.labels(self.queue_label(queue), Disposition(disposition).value).inc()

    def record_incident(self, kind: str) -> None:
        """Count an agent incident (compliance rules call this too); unknown kinds count as ``other``."""
        known = kind if kind in IncidentKind.__members__.values() else OTHER_KIND
        self.incidents.labels(str(known)).inc()

    def record_pin_failure(self) -> None:
        self.pin_failures.inc()

    def observe(self, output: Output) -> None:
        """The listener on the core's outputs (``DistributionService.listeners``)."""
        match output:
            case cmd.CallQueued(call_id=call_id, queue=queue):
                self._waiting.setdefault(call_id, queue)
            case cmd.CallAnswered(call_id=call_id, enqueued_at=enqueued_at, answered_at=answered_at):
                if call_id in self._talking:
                    return
                entered = self._waiting.pop(call_id, None) or output.queue
                self._talking[call_id] = entered
                self._count(entered, CallOutcome.answered, answered_at - enqueued_at)
                self.tickets.labels(self.queue_label(entered)).inc()  # every answered call opens one
            case cmd.CallFinished(call_id=call_id, answered_at=answered_at, at=at):
                entered = self._talking.pop(call_id, None)
                if entered is not None:
                    self.talk.labels(self.queue_label(entered)).observe(at - answered_at)
            case cmd.CallAbandoned(call_id=call_id, enqueued_at=enqueued_at, at=at):
                entered = self._waiting.pop(call_id, None) or output.queue
                self._count(entered, CallOutcome.abandoned, at - enqueued_at)
            case cmd.CallOverflowed(call_id=call_id, destination=destination, enqueued_at=enqueued_at, at=at):
                if destination.kind is not DestinationKind.QUEUE:
                    # left the hotline's queues unanswered: offered, and not connected
                    entered = self._waiting.pop(call_id, None) or output.queue
                    self._count(entered, CallOutcome.overflowed, at - enqueued_at)
            case cmd.AgentMissedOffer():
                self.incidents.labels(IncidentKind.MISSED_OFFER.value).inc()
            case cmd.AgentExhaustedNoAnswer():
                self.incidents.labels(IncidentKind.NO_ANSWER_LIMIT.value).inc()

    def _count(self, entered: str, outcome: CallOutcome, wait: float) -> None:
        """Count a decided call by the KPI rules (:meth:`KpiDefinitions.count`, shared with reports)."""
        counted: Counted | None = self.definitions.count(entered, outcome, wait)
        if counted is None:
            return
        queue = self.queue_label(entered)
        if counted.offered:
            self.offered.labels(queue).inc()
        if counted.short_abandon:
            self.short_abandoned.labels(queue).inc()
        if counted.fate is Fate.ANSWERED:
            self.answered.labels(queue).inc()
            if counted.in_service_level:
                self.answered_in_sl.labels(queue).inc()
        elif counted.fate is Fate.ABANDONED:
            self.abandoned.labels(queue).inc()
        elif counted.fate is Fate.OVERFLOWED:
            self.overflowed.labels(queue).inc()
        if counted.fate in WAIT_FATES:
            self.wait.labels(queue, counted.fate.value).observe(counted.wait)
