"""The routing configuration is the one home of queue names and service levels.

Defects: metric labels came from ``HOTLINE_QUEUES`` (every queue of a queues file but ``general``
was exported as ``other``, and a reload changed nothing), and the KPIs' N came from
``HOTLINE_KPI_QUEUE_SERVICE_LEVEL_SECONDS`` while ``/queues`` showed the queue's ``service_level``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from acd import events as ev
from acd.queues_config import load
from agents.presence import Cause
from app.observability.wiring import Observability
from app.services.distribution import DistributionConfig, DistributionService
from app.services.routing import routing_config
from app.settings import Settings

QUEUES = """
[defaults]
service_level = 20

[[queue]]
name = "general"

[[queue]]
name = "complaints"
service_level = 10
"""


class _Recorder:
    def __getattr__(self, name: str) -> object:
        return lambda *args: None


class _Link:
    up = True
    reconnects = 0


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def service_with_metrics(path: Path) -> tuple[DistributionService, Observability, Clock]:
    settings = Settings(queues_file=str(path))
    routing = routing_config(settings)
    clock = Clock()
    service = DistributionService(
        DistributionConfig(routing.queues), lambda **callbacks: _Link(), _Recorder(), clock=clock
    )
    service._spawn = lambda coro: coro.close()  # type: ignore[method-assign]  # no Asterisk here
    observability = Observability(settings, None, service, routing.queues)  # type: ignore[arg-type]
    return service, observability, clock


def answer(service: DistributionService, clock: Clock, call_id: str, queue: str, wait: float) -> None:
    start = clock.now
    service._handle(ev.CallArrived(start, call_id, queue, "13800138000", f"PJSIP/c-{call_id}"))
    clock.now = start + wait
    agent = f"a-{call_id}"
    service.log_in(agent, f"ep-{call_id}", Cause.AGENT, agent)
    service.make_ready(agent, Cause.AGENT, agent)
    offer = next(o for o in service.center.engine.offers.values() if o.call_id == call_id)
    service._handle(ev.OfferAnswered(clock.now, offer.offer_id))


def value(observability: Observability, name: str, **labels: str) -> float | None:
    return observability.metrics.registry.get_sample_value(name, labels)


async def test_metric_labels_follow_the_queues_file_and_its_reload(tmp_path: Path) -> None:
    path = tmp_path / "queues.toml"
    path.write_text(QUEUES)
    service, observability, clock = service_with_metrics(path)
    answer(service, clock, "c1", "complaints", wait=12)
    assert value(observability, "hotline_calls_answered_total", queue="complaints") == 1
    assert value(observability, "hotline_calls_answered_total", queue="other") == 0

    path.write_text(QUEUES + '\n[[queue]]\nname = "vip"\nservice_level = 5\n')
    service.reload_queues(load(path).queues)
    assert value(observability, "hotline_calls_answered_total", queue="vip") == 0  # the series exists
    assert value(observability, "hotline_queue_service_level_seconds", queue="vip") == 5
    answer(service, clock, "c2", "vip", wait=6)
    assert value(observability, "hotline_calls_answered_total", queue="vip") == 1
    assert value(observability, "hotline_calls_answered_in_service_level_total", queue="vip") == 0
    scraped = text_string_to_metric_families(observability.metrics.render().decode())
    waiting = {
        s.labels["queue"] for f in scraped if f.name == "hotline_queue_calls_waiting" for s in f.samples
    }
    assert {"general", "complaints", "vip"} <= waiting


async def test_one_service_level_per_queue_for_queues_metrics_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "queues.toml"
    path.write_text(QUEUES)
    service, observability, clock = service_with_metrics(path)
    snapshot = service.snapshot()
    shown = {q.name: q.config.service_level for q in snapshot.queues}  # what /queues shows
    assert shown == {"complaints": 10.0, "general": 20.0}
    for queue, n in shown.items():
        assert observability.definitions.threshold(queue) == n  # what reports and the wallboard use
        assert value(observability, "hotline_queue_service_level_seconds", queue=queue) == n
    answer(service, clock, "c1", "complaints", wait=12)  # within 15 s, not within the queue's 10 s
    answer(service, clock, "c2", "general", wait=18)  # not within 15 s, within the queue's 20 s
    assert value(observability, "hotline_calls_answered_in_service_level_total", queue="complaints") == 0
    assert value(observability, "hotline_calls_answered_in_service_level_total", queue="general") == 1


@pytest.mark.parametrize(
    "name", ["HOTLINE_KPI_SERVICE_LEVEL_SECONDS", "HOTLINE_KPI_QUEUE_SERVICE_LEVEL_SECONDS"]
)
def test_the_old_service_level_settings_are_refused_not_ignored(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, '{"vip": 5}' if "QUEUE" in name else "10")
    with pytest.raises(ValidationError, match="queues file"):
        Settings()
