"""``/api/v1/reports/kpi`` from the call records, and its agreement with the live metrics.

The same calls go through the real core; its notifications feed both the metrics exporter and the
real ``CallRecorder`` (as ``DistributionService`` does), and the report must say what the metrics say.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from acd import commands as cmd
from acd import events as ev
from acd.center import ContactCenter, Output
from acd.engine import QueueConfig
from agents.presence import Cause
from app.api import auth, reports
from app.api.deps import get_settings_dep
from app.db.models import Role
from app.observability.metrics import HotlineMetrics
from app.services.calls import CallRecorder
from app.services.kpi import KpiDefinitions
from app.settings import Settings

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
PERIOD = {"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class Center:
    """The core with the two listeners under test: metrics and the call records."""

    def __init__(self, settings: Settings, recorder: CallRecorder) -> None:
        self.core = ContactCenter([QueueConfig(q) for q in settings.queues])
        configs = [QueueConfig(q) for q in settings.queues]
        self.metrics = HotlineMetrics(
            KpiDefinitions.from_settings(settings, configs), settings, settings.queues
        )
        self.recorder = recorder
        self.agents = 0

    def feed(self, outputs: list[Output]) -> None:
        for o in outputs:
            self.metrics.observe(o)
            match o:
                case cmd.CallQueued():
                    self.recorder.call_waiting(
                        o.call_id, o.queue, o.caller_number, o.priority, _utc(o.enqueued_at)
                    )
                case cmd.CallOffered():
                    self.recorder.call_ringing(o.call_id, o.agent_id)
                case cmd.CallAnswered():
                    self.recorder.call_answered(o.call_id, o.agent_id, _utc(o.answered_at))
                case cmd.CallFinished():
                    self.recorder.call_ended(o.call_id, _utc(o.at), "normal")
                case cmd.CallAbandoned():
                    self.recorder.call_abandoned(o.call_id, _utc(o.at), o.cause)

    def answered(self, call_id: str, start: float, wait: float, talk: float) -> None:
        self.feed(
            self.core.handle(ev.CallArrived(start, call_id, "general", "13800138000", f"PJSIP/c-{call_id}"))
        )
        self.agents += 1
        agent = f"{1000 + self.agents}"
        self.feed(self.core.log_in(agent, f"agent{agent}", start + wait, Cause.AGENT, agent))
        self.feed(self.core.make_ready(agent, start + wait, Cause.AGENT, agent))
        offer = next(o for o in self.core.engine.offers.values() if o.call_id == call_id)
        self.feed(self.core.handle(ev.OfferAnswered(start + wait, offer.offer_id)))
        self.feed(self.core.handle(ev.CallerHungUp(start + wait + talk, call_id, "16")))
        self.feed(self.core.log_out(agent, start + wait + talk, Cause.AGENT, agent))

    def abandoned(self, call_id: str, start: float, wait: float) -> None:
        self.feed(
            self.core.handle(ev.CallArrived(start, call_id, "general", "13800138000", f"PJSIP/c-{call_id}"))
        )
        self.feed(self.core.handle(ev.CallerHungUp(start + wait, call_id, "16")))

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, {"queue": "general", **labels}) or 0.0


@pytest.fixture(params=[False, True], ids=["short-counted", "short-excluded"])
def kpi_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "kpi_short_abandon_seconds": 5.0,
            "kpi_exclude_short_abandons": request.param,
            "timezone": "UTC",
        }
    )


@pytest.fixture
def api(sessions: sessionmaker[Session], kpi_settings: Settings) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(auth.router)
    app.include_router(reports.router)
    app.state.session_factory = sessions
    app.dependency_overrides[get_settings_dep] = lambda: kpi_settings
    with TestClient(app) as client:
        yield client


@pytest.fixture
def supervisor(api: TestClient, make_user: Callable[..., None]) -> dict[str, str]:
    make_user("sup", Role.supervisor)
    token = api.post("/api/v1/token", data={"username": "sup", "password": "correct horse battery"})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_report_equals_the_metrics_for_the_same_calls(
    api: TestClient, supervisor: dict[str, str], sessions: sessionmaker[Session], kpi_settings: Settings
) -> None:
    center = Center(kpi_settings, CallRecorder(sessions))
    rng = random.Random(5)
    start = T0.timestamp()
    for i in range(40):
        begin = start + i * 600 + rng.uniform(0, 30)
        if rng.random() < 0.6:
            center.answered(
                f"c{i}", begin, wait=rng.choice([0.4, 3, 14.9, 15, 15.2, 40]), talk=rng.uniform(5, 300)
            )
        else:
            center.abandoned(f"c{i}", begin, wait=rng.choice([1, 4.9, 5, 12, 60]))
    body = api.get("/api/v1/reports/kpi", params={**PERIOD, "interval": "hour"}, headers=supervisor).json()
    total = body["total"]
    assert total["offered"] == center.metric("hotline_calls_offered_total") > 0
    assert total["answered"] == center.metric("hotline_calls_answered_total")
    assert total["answered_in_service_level"] == center.metric(
        "hotline_calls_answered_in_service_level_total"
    )
    assert total["abandoned"] == center.metric("hotline_calls_abandoned_total")
    assert total["short_abandoned"] == center.metric("hotline_calls_short_abandoned_total") > 0
    assert total["tickets_opened"] == center.metric("hotline_tickets_opened_total")
    wait_sum = center.metric("hotline_call_wait_seconds_sum", outcome="answered")
    assert total["asa_seconds"] == pytest.approx(wait_sum / total["answered"], abs=1e-5)
    talk = center.metric("hotline_call_talk_seconds_sum") / center.metric("hotline_call_talk_seconds_count")
    assert total["aht_seconds"] == pytest.approx(talk, abs=1e-5)
    assert sum(r["offered"] for r in body["rows"]) == total["offered"]
    assert len(body["rows"]) == 24


def test_csv_export_matches_the_json(
    api: TestClient, supervisor: dict[str, str], sessions: sessionmaker[Session], kpi_settings: Settings
) -> None:
    center = Center(kpi_settings, CallRecorder(sessions))
    center.answered("a", T0.timestamp() + 60, wait=2, talk=30)
    center.abandoned("b", T0.timestamp() + 120, wait=30)
    day = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z", "format": "csv"}
    response = api.get("/api/v1/reports/kpi", params=day, headers=supervisor)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2  # one day, then the total
    assert rows[-1]["offered"] == "2" and rows[-1]["connection_rate"] == "0.5"


def test_only_supervisors_and_bounded_periods(
    api: TestClient, supervisor: dict[str, str], make_user: Callable[..., None]
) -> None:
    assert api.get("/api/v1/reports/kpi").status_code == 401
    make_user("alice", Role.agent, "1001")
    token = api.post("/api/v1/token", data={"username": "alice", "password": "correct horse battery"})
    agent = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert api.get("/api/v1/reports/kpi", headers=agent).status_code == 403
    too_long = {"from": T0.isoformat(), "to": (T0 + timedelta(days=40)).isoformat(), "interval": "hour"}
    assert api.get("/api/v1/reports/kpi", params=too_long, headers=supervisor).status_code == 422
    backwards = {"from": PERIOD["to"], "to": PERIOD["from"]}
    assert api.get("/api/v1/reports/kpi", params=backwards, headers=supervisor).status_code == 422
    assert api.get("/api/v1/reports/kpi", params={"interval": "week"}, headers=supervisor).status_code == 422
    today = api.get("/api/v1/reports/kpi", headers=supervisor).json()
    assert today["interval"] == "day" and today["total"]["offered"] == 0


def test_the_json_report_has_every_column_of_the_csv_including_overflowed(
    api: TestClient, supervisor: dict[str, str], sessions: sessionmaker[Session], kpi_settings: Settings
) -> None:
    recorder = CallRecorder(sessions)
    center = Center(kpi_settings, recorder)
    center.answered("a", T0.timestamp() + 60, wait=2, talk=30)
    recorder.call_waiting("o", "general", "13800138001", 0, T0 + timedelta(minutes=5))
    recorder.call_overflowed("o", T0 + timedelta(minutes=10), "callback", "max_wait")
    day = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}
    total = api.get("/api/v1/reports/kpi", params=day, headers=supervisor).json()["total"]
    [*_, csv_total] = csv.DictReader(
        io.StringIO(api.get("/api/v1/reports/kpi", params={**day, "format": "csv"}, headers=supervisor).text)
    )
    assert set(csv_total) - {"start", "end"} <= set(total)
    assert (total["overflowed"], csv_total["overflowed"]) == (1, "1")
    assert total["offered"] == 2 and total["connection_rate"] == 0.5
