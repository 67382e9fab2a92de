"""The managers' wallboard: a live snapshot of queues, agents and today's KPIs, pushed to every worker.

Call distribution runs in one process, the one owning the AMI link. There the
:class:`WallboardPublisher` follows the core's outputs and, within a fraction of a second of each,
publishes a complete snapshot to a Redis pub/sub channel (and keeps the latest under a key). Every API
process runs a :class:`WallboardHub`, one Redis subscription fanning out to its own stream clients.
Each message is a whole snapshot, so a client that misses one loses nothing: the next one is complete.

Today's KPIs come from the database (:func:`app.services.kpi.today_totals`), the same rules and rows
as the reports, recomputed after each answered or abandoned call once its record is written.
Snapshots carry no caller numbers: a wallboard hangs where anyone may read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.orm import Session, sessionmaker

from acd import commands as cmd
from acd.center import Output
from agents.compliance import AgentCompliance, time_limit
from agents.presence import AgentState
from app.observability.metrics import CenterView
from app.services import redis_channel
from app.services.kpi import KpiDefinitions, KpiTotals, today_bounds, today_totals
from app.settings import Settings

log = logging.getLogger(__name__)

#: Without the compliance tracker (tests, tools): no busy reason has a limit of its own.
NO_COMPLIANCE = AgentCompliance(None, 0.0, (), None, "")
_KPI_EVENTS = (cmd.CallAnswered, cmd.CallAbandoned, cmd.CallFinished)
#: Snapshots are coalesced: at most one per this many seconds, however busy the center is.
PUBLISH_SPACING = 0.1
#: Today's KPIs are also recomputed this often (the day changes at midnight without any call).
KPI_REFRESH_SECONDS = 30.0


def snapshot_key(channel: str) -> str:
    return f"{channel}:latest"


def build_snapshot(
    service: CenterView,
    settings: Settings,
    definitions: KpiDefinitions,
    kpis: KpiTotals | None,
    compliance: Callable[[str, float], AgentCompliance] | None = None,
) -> dict[str, Any]:
    """The wallboard's picture of the center now (read on the event loop, where the core runs).

    An agent is *over limit* by the one rule the supervisor view uses too
    (:func:`agents.compliance.time_limit`): its busy reason's own limit or what is left of the
    reason's shift allowance (``compliance``: the tracker's status), else
    ``wallboard_busy_limit_seconds`` for busy without a limit, not ready and logged in.
    """
    snapshot = service.snapshot()
    now = snapshot.at
    queues = []
    for queue in snapshot.queues:
        calls = [
            {
                "id": c.call_id,
                "state": c.state,
                "priority": c.priority,
                "offered_to": c.offered_to,
                "enqueued_at": c.enqueued_at,
                "wait_seconds": round(now - c.enqueued_at, 3),
            }
            for c in queue.calls
        ]
        queues.append(
            {
                "name": queue.name,
                "calls_waiting": len(calls),
                "oldest_wait_seconds": max((c["wait_seconds"] for c in calls), default=0.0),
                "service_level_seconds": queue.config.service_level,
                "agents_available": queue.agents_available,
                "calls": calls,
            }
        )
    agents = []
    by_state = dict.fromkeys((s.value for s in AgentState), 0)
    for agent in snapshot.agents:
        by_state[agent.state.value] += 1
        if agent.state is AgentState.LOGGED_OUT:
            continue
        in_state = agent.seconds_in_state(now)
        status = compliance(agent.agent_id, now) if compliance is not None else NO_COMPLIANCE
        limit = time_limit(agent.state, status, settings.wallboard_busy_limit_seconds)
        agents.append(
            {
                "id": agent.agent_id,
                "name": agent.name or agent.agent_id,
                "state": agent.state.value,
                "reason": agent.reason,
                "since": agent.since,
                "seconds_in_state": round(in_state, 3),
                "limit_seconds": limit,
                "over_limit": limit is not None and in_state > limit,
            }
        )
    agents.sort(key=lambda a: (not a["over_limit"], a["id"]))
    day_start, _ = today_bounds(datetime.fromtimestamp(now, UTC), settings.timezone)
    return {
        "server_time": now,
        "day": day_start.date().isoformat(),
        "timezone": settings.timezone,
        "ami_up": service.link.up,
        "queues": queues,
        "agents": agents,
        "agents_by_state": by_state,
        "busy_limit_seconds": settings.wallboard_busy_limit_seconds,
        "kpis": None if kpis is None else kpis.as_dict(),
        "targets": _targets(settings, kpis),
        "definitions": definitions.describe(),
    }


def _targets(settings: Settings, kpis: KpiTotals | None) -> dict[str, dict[str, Any]]:
    """Each target KPI with its value and whether it is met (``None``: no calls yet)."""

    def judge(value: float | None, target: float, at_least: bool) -> dict[str, Any]:
        met = None if value is None else (value >= target if at_least else value <= target)
        return {"value": value, "target": target, "at_least": at_least, "met": met}

    totals = kpis or KpiTotals()
    return {
        "connection_rate": judge(totals.connection_rate, settings.kpi_target_connection_rate, True),
        "service_level_rate": judge(totals.service_level_rate, settings.kpi_target_service_level, True),
        "abandonment_rate": judge(totals.abandonment_rate, settings.kpi_target_abandonment_rate, False),
    }


class WallboardHub:
    """One Redis subscription per process, fanned out to this process's stream clients."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.latest: str | None = None
        self.subscribed = asyncio.Event()
        self._clients: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="wallboard-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def connect(self) -> asyncio.Queue[str]:
        """A client's queue: it holds the newest snapshot not yet sent (older ones are superseded)."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        self._clients.add(queue)
        return queue

    def disconnect(self, queue: asyncio.Queue[str]) -> None:
        self._clients.discard(queue)

    def deliver(self, data: str) -> None:
        self.latest = data
        for queue in self._clients:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(data)

    async def fetch_latest(self) -> str | None:
        """The newest snapshot: as received, else as kept in Redis by the publisher."""
        if self.latest is not None:
            return self.latest
        client = aioredis.from_url(self.redis_url)
        try:
            raw = await client.get(snapshot_key(self.channel))
        except Exception as exc:
            log.warning("wallboard snapshot not readable from Redis: %s", exc)
            return None
        finally:
            await client.aclose()
        return None if raw is None else raw.decode()

    async def _run(self) -> None:
        await redis_channel.follow(
            self.redis_url, self.channel, self.deliver, self.subscribed, "wallboard subscription"
        )


class WallboardPublisher:
    """In the process running distribution: turns the core's outputs into published snapshots."""

    def __init__(
        self,
        service: CenterView,
        settings: Settings,
        definitions: KpiDefinitions,
        sessions: sessionmaker[Session],
        hub: WallboardHub,
        *,
        storage_settled: Callable[[], Any] | None = None,
        compliance: Callable[[str, float], AgentCompliance] | None = None,
    ) -> None:
        self.service = service
        self.compliance = compliance
        self.settings = settings
        self.definitions = definitions
        self.sessions = sessions
        self.hub = hub
        self.kpis: KpiTotals | None = None
        self._storage_settled = storage_settled  # awaitable factory: pending call records are written
        self._dirty = asyncio.Event()
        self._kpis_stale = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: aioredis.Redis | None = None
        self._redis_failing = False

    def observe(self, output: Output) -> None:
        """The listener on the core's outputs: anything visible on the board changed."""
        self._dirty.set()
        if isinstance(output, _KPI_EVENTS):
            self._kpis_stale.set()

    def snapshot(self) -> dict[str, Any]:
        return build_snapshot(self.service, self.settings, self.definitions, self.kpis, self.compliance)

    def changed(self) -> None:
        """Something on the board changed outside the core's outputs (a reload): publish again."""
        self._dirty.set()

    def start(self) -> None:
        self._redis = aioredis.from_url(self.settings.redis_url)
        loop = asyncio.get_running_loop()
        self._kpis_stale.set()
        self._tasks = [
            loop.create_task(self._publish_loop(), name="wallboard-publish"),
            loop.create_task(self._kpi_loop(), name="wallboard-kpis"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def publish(self) -> None:
        data = json.dumps(self.snapshot(), separators=(",", ":"))
        try:
            assert self._redis is not None, "publisher not started"
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(snapshot_key(self.hub.channel), data, ex=3600)
                pipe.publish(self.hub.channel, data)
                await pipe.execute()
            if self._redis_failing:
                log.info("wallboard publishing to Redis again")
            self._redis_failing = False
        except Exception as exc:
            if not self._redis_failing:
                log.warning("wallboard cannot publish to Redis (local clients still served): %s", exc)
            self._redis_failing = True
            self.hub.deliver(data)  # this process's own clients need no Redis

    async def _publish_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            started = time.monotonic()
            await self.publish()
            await asyncio.sleep(max(0.0, PUBLISH_SPACING - (time.monotonic() - started)))

    async def _kpi_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kpis_stale.wait(), KPI_REFRESH_SECONDS)
            self._kpis_stale.clear()
            if self._storage_settled is not None:
                try:
                    await self._storage_settled()
                except TimeoutError:
                    log.warning("call records still being written; today's KPIs may lag")
            try:
                self.kpis = await asyncio.to_thread(self._read_kpis)
            except Exception:
                log.exception("today's KPIs could not be read")
                continue
            self._dirty.set()

    def _read_kpis(self) -> KpiTotals:
        now = datetime.fromtimestamp(self.service.clock(), UTC)
        with self.sessions() as session:
            return today_totals(session, self.definitions, now, self.settings.timezone)
