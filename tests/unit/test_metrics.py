"""The Prometheus exporter, fed by the real core (``ContactCenter``) as the service feeds it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from acd import events as ev
from acd.center import ContactCenter, Output
from acd.engine import QueueConfig
from acd.views import AgentProfile, CenterSnapshot
from agents.compliance import UNAUTHORIZED_BUSY, IncidentKind
from agents.presence import Cause
from app.observability.metrics import HotlineMetrics
from app.services.kpi import KpiDefinitions
from app.services.writer import StorageWriter
from app.settings import Settings

A = Cause.AGENT
CALLER = "13800138000"


@dataclass
class FakeLink:
    up: bool = True
    reconnects: int = 0


@dataclass
class Harness:
    """A core, the exporter listening to it, and a settable clock (what DistributionService does)."""

    metrics: HotlineMetrics
    center: ContactCenter
    now: float = 1000.0
    link: FakeLink = field(default_factory=FakeLink)
    writer: StorageWriter = field(default_factory=StorageWriter)

    def clock(self) -> float:
        return self.now

    def snapshot(self) -> CenterSnapshot:
        return self.center.snapshot(self.now)

    def feed(self, outputs: list[Output]) -> list[Output]:
        for output in outputs:
            self.metrics.observe(output)
        return outputs

    def handle(self, event: ev.Event) -> list[Output]:
        self.now = event.at
        return self.feed(self.center.handle(event))

    def arrive(self, call_id: str, at: float, queue: str = "general") -> None:
        self.handle(ev.CallArrived(at, call_id, queue, CALLER, f"PJSIP/citizens-{call_id}"))

    def agent_ready(self, agent_id: str, at: float) -> list[Output]:
        self.now = at
        self.feed(self.center.log_in(agent_id, f"agent{agent_id}", at, A, agent_id))
        return self.feed(self.center.make_ready(agent_id, at, A, agent_id))

    def answer(self, call_id: str, at: float) -> None:
        offer = next(o for o in self.center.engine.offers.values() if o.call_id == call_id)
        self.handle(ev.OfferAnswered(at, offer.offer_id))

    def hang_up(self, call_id: str, at: float) -> None:
        self.handle(ev.CallerHungUp(at, call_id, "16"))

    def value(self, name: str, **labels: str) -> float:
        found = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found


def harness(
    queues: tuple[str, ...] = ("general",), service_levels: dict[str, float] | None = None, **kpi: object
) -> Harness:
    settings = Settings(**kpi)
    configs = [QueueConfig(q, service_level=(service_levels or {}).get(q, 15.0)) for q in queues]
    metrics = HotlineMetrics(KpiDefinitions.from_settings(settings, configs), settings, queues)
    h = Harness(metrics, ContactCenter(configs))
    metrics.attach(h)
    return h


def test_answered_call_counts_once_with_its_wait_and_talk_time() -> None:
    h = harness()
    h.arrive("c1", 1000)
    h.agent_ready("1001", 1003)
    h.answer("c1", 1004)
    h.hang_up("c1", 1064)
    assert h.value("hotline_calls_offered_total", queue="general") == 1
    assert h.value("hotline_calls_answered_total", queue="general") == 1
    assert h.value("hotline_calls_answered_in_service_level_total", queue="general") == 1
    assert h.value("hotline_tickets_opened_total", queue="general") == 1
    assert h.value("hotline_call_wait_seconds_sum", queue="general", outcome="answered") == 4
    assert h.value("hotline_call_wait_seconds_bucket", queue="general", outcome="answered", le="5.0") == 1
    assert h.value("hotline_call_talk_seconds_sum", queue="general") == 60
    assert h.value("hotline_calls_abandoned_total", queue="general") == 0


def test_service_level_threshold_is_inclusive_and_per_queue() -> None:
    h = harness(("general", "vip"), service_levels={"vip": 5})
    for call_id, queue, wait in (("g1", "general", 15), ("g2", "general", 15.5), ("v1", "vip", 6)):
        h.arrive(call_id, 2000, queue)
        h.agent_ready(f"a-{call_id}", 2000 + wait)
        h.answer(call_id, 2000 + wait)
    assert h.value("hotline_calls_answered_total", queue="general") == 2
    assert h.value("hotline_calls_answered_in_service_level_total", queue="general") == 1
    assert h.value("hotline_calls_answered_in_service_level_total", queue="vip") == 0
    # the histogram has an edge at each queue's threshold and at the national 15 s
    assert h.value("hotline_call_wait_seconds_bucket", queue="general", outcome="answered", le="15.0") == 1
    assert h.value("hotline_queue_service_level_seconds", queue="vip") == 5


def test_short_abandons_are_counted_by_default() -> None:
    h = harness(kpi_short_abandon_seconds=5)
    h.arrive("c1", 0)
    h.hang_up("c1", 3)
    h.arrive("c2", 10)
    h.hang_up("c2", 40)
    assert h.value("hotline_calls_offered_total", queue="general") == 2
    assert h.value("hotline_calls_abandoned_total", queue="general") == 2
    assert h.value("hotline_calls_short_abandoned_total", queue="general") == 1
    assert h.value("hotline_call_wait_seconds_count", queue="general", outcome="abandoned") == 2


def test_excluded_short_abandons_leave_offered_and_abandoned() -> None:
    h = harness(kpi_short_abandon_seconds=5, kpi_exclude_short_abandons=True)
    h.arrive("c1", 0)
    h.hang_up("c1", 4.999)
    h.arrive("c2", 10)
    h.hang_up("c2", 15)  # exactly the threshold: no longer short
    assert h.value("hotline_calls_offered_total", queue="general") == 1
    assert h.value("hotline_calls_abandoned_total", queue="general") == 1
    assert h.value("hotline_calls_short_abandoned_total", queue="general") == 1
    assert h.value("hotline_call_wait_seconds_count", queue="general", outcome="short_abandoned") == 1


def test_replayed_events_after_a_reconnect_are_not_counted_twice() -> None:
    h = harness()
    h.arrive("c1", 0)
    h.arrive("c2", 1)
    h.agent_ready("1001", 2)
    h.answer("c1", 3)
    # the link drops and comes back: the resync sees both calls, then old events are replayed
    live = (
        ev.LiveCall("c1", "general", CALLER, "PJSIP/citizens-c1", 0, 0.0, waiting=False),
        ev.LiveCall("c2", "general", CALLER, "PJSIP/citizens-c2", 0, 1.0, waiting=True),
    )
    offer = next(iter(h.center.engine.offers))
    h.handle(ev.Resynced(10, live, frozenset({"c1", "c2", offer})))
    h.arrive("c1", 11)
    h.arrive("c2", 11)
    h.handle(ev.OfferAnswered(11, offer))
    assert h.value("hotline_calls_offered_total", queue="general") == 1
    assert h.value("hotline_calls_answered_total", queue="general") == 1
    # c2 hung up while the link was down: the next resync abandons it, once
    h.handle(ev.Resynced(20, live[:1], frozenset({"c1", offer})))
    h.handle(ev.Resynced(21, live[:1], frozenset({"c1", offer})))
    h.hang_up("c2", 22)
    assert h.value("hotline_calls_abandoned_total", queue="general") == 1
    assert h.value("hotline_calls_offered_total", queue="general") == 2


def test_a_call_counts_under_the_queue_it_entered() -> None:
    h = harness(("general",))
    h.arrive("c1", 0, queue="unconfigured")
    h.agent_ready("1001", 1)
    h.feed(h.center.set_profiles([AgentProfile("1001", queues=frozenset({"unconfigured"}))], h.now))
    h.feed(h.center.make_ready("1001", 1, A, "1001"))
    h.answer("c1", 2)
    assert h.value("hotline_calls_answered_total", queue="other") == 1  # bounded label values


def test_live_gauges_read_the_core() -> None:
    h = harness()
    h.arrive("c1", 100)
    h.arrive("c2", 130)
    h.now = 160
    h.feed(h.center.log_in("1001", "agent1", 160, A, "alice"))
    h.feed(h.center.make_busy("1001", "lunch", 160, A, "alice"))
    h.link.up, h.link.reconnects = False, 3
    assert h.value("hotline_queue_calls_waiting", queue="general") == 2
    assert h.value("hotline_queue_oldest_wait_seconds", queue="general") == 60
    assert h.value("hotline_agents", state="busy") == 1
    assert h.value("hotline_agents", state="ready") == 0
    assert h.value("hotline_ami_up") == 0
    assert h.value("hotline_ami_reconnects_total") == 3


def test_the_storage_writer_backlog_and_failures_are_exported() -> None:
    """The writer's docstring promised an exported backlog; failing writes are metrics too (issue 8)."""
    h = harness()
    database = {"up": False}

    def write(n: int) -> None:
        if not database["up"]:
            raise OperationalError("INSERT INTO calls", {}, Exception("database is locked"))

    async def scenario() -> None:
        h.writer.register("call", write)
        h.writer.start()
        for n in range(3):
            h.writer.submit("call", n)
        async with asyncio.timeout(5):
            while not h.writer.failing:
                await asyncio.sleep(0.01)
        assert h.value("hotline_storage_backlog") == 3
        assert h.value("hotline_storage_writes_failing") == 1
        assert h.value("hotline_storage_write_failures_total", kind="outage") >= 1
        assert h.value("hotline_storage_write_stalled_seconds") > 0
        database["up"] = True
        await h.writer.drain(timeout=5)
        assert h.value("hotline_storage_backlog") == 0
        assert h.value("hotline_storage_writes_failing") == 0
        assert h.value("hotline_storage_write_stalled_seconds") == 0
        assert h.value("hotline_storage_write_failures_total", kind="rejected") == 0
        await h.writer.stop()

    asyncio.run(scenario())


def test_incidents_by_kind_from_the_core_and_from_compliance() -> None:
    h = harness(ring_timeout=4)
    h.arrive("c1", 0)
    h.agent_ready("1001", 1)
    offer = next(iter(h.center.engine.offers))
    h.handle(ev.OfferFailed(5, offer, ev.OfferFailure.NO_ANSWER))
    h.metrics.record_incident("busy_over_limit")
    h.metrics.record_incident("someone's free text")
    assert h.value("hotline_agent_incidents_total", kind="missed_offer") == 1
    assert h.value("hotline_agent_incidents_total", kind="busy_over_limit") == 1
    assert h.value("hotline_agent_incidents_total", kind="other") == 1


def test_exposition_has_the_issue_families_and_no_unbounded_labels() -> None:
    h = harness()
    h.arrive("c1", 0)
    h.agent_ready("1001", 1)
    h.answer("c1", 2)
    text = h.metrics.render().decode()
    assert CALLER not in text and '"1001"' not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "hotline_calls_offered", "hotline_calls_answered", "hotline_calls_abandoned",
        "hotline_call_wait_seconds", "hotline_call_talk_seconds", "hotline_queue_calls_waiting",
        "hotline_queue_oldest_wait_seconds", "hotline_agents", "hotline_agent_incidents",
        "hotline_tickets_opened", "hotline_ami_up", "hotline_ami_reconnects",
    ):  # fmt: skip
        assert name in families, name
    assert families["hotline_calls_offered"].type == "counter"
    assert families["hotline_call_wait_seconds"].type == "histogram"
    for family in families.values():
        for sample in family.samples:
            assert set(sample.labels) <= {"queue", "outcome", "state", "kind", "kpi", "le", "disposition"}, (
                sample
            )


def test_every_incident_kind_has_its_series_and_unknown_kinds_count_as_other() -> None:
    h = harness()
    for kind in IncidentKind:
        assert h.value("hotline_agent_incidents_total", kind=kind.value) == 0
    h.metrics.record_incident(IncidentKind.LOGIN_PIN_FAILURES.value)
    h.metrics.record_incident("from_the_future")
    assert h.value("hotline_agent_incidents_total", kind="login_pin_failures") == 1
    assert h.value("hotline_agent_incidents_total", kind="other") == 1
    assert IncidentKind.MISSED_OFFER not in UNAUTHORIZED_BUSY


def test_a_call_overflowing_to_a_message_is_offered_and_not_answered() -> None:
    from acd.queues_config import Destination, DestinationKind

    settings = Settings()
    queue = QueueConfig("general", max_wait=30, overflow=Destination(DestinationKind.MESSAGE, "vm-goodbye"))
    metrics = HotlineMetrics(KpiDefinitions.from_settings(settings, [queue]), settings, ["general"])
    h = Harness(metrics, ContactCenter([queue]))
    metrics.attach(h)
    h.arrive("c1", 1000)
    h.handle(ev.TimePassed(1031))
    assert h.value("hotline_calls_offered_total", queue="general") == 1
    assert h.value("hotline_calls_overflowed_total", queue="general") == 1
    assert h.value("hotline_calls_answered_total", queue="general") == 0
    assert h.value("hotline_calls_abandoned_total", queue="general") == 0
