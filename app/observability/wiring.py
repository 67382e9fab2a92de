"""Wiring of metrics and wallboard into the application (see :class:`Observability`)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from acd.queues_config import QueueConfig
from agents.compliance import AgentCompliance
from app.observability.metrics import HotlineMetrics
from app.services.distribution import DistributionService
from app.services.kpi import KpiDefinitions
from app.services.routing import routing_config
from app.services.wallboard import WallboardHub, WallboardPublisher
from app.settings import Settings


class Observability:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        service: DistributionService | None,
        queues: tuple[QueueConfig, ...] | None = None,
        compliance: Callable[[str, float], AgentCompliance] | None = None,
    ) -> None:
        """``queues``: the routing configuration the service runs with (default: the configured one)."""
        if queues is None:
            queues = routing_config(settings).queues
        self.settings = settings
        self.definitions = KpiDefinitions.from_settings(settings, queues)
        self.metrics = HotlineMetrics(self.definitions, settings, [q.name for q in queues])
        self.hub = WallboardHub(settings.redis_url, settings.wallboard_channel)
        self.publisher: WallboardPublisher | None = None
        if service is not None:
            self.metrics.attach(service)
            self.publisher = WallboardPublisher(
                service,
                settings,
                self.definitions,
                sessions,
                self.hub,
                storage_settled=lambda: service.writer.drain(timeout=2.0),
                compliance=compliance,
            )
            service.listeners.extend((self.metrics.observe, self.publisher.observe))
            service.queue_observers.append(self.queues_reloaded)

    def queues_reloaded(self, queues: tuple[QueueConfig, ...]) -> None:
        """The routing configuration changed: labels and service levels follow it everywhere."""
        self.definitions = self.definitions.with_queues(queues)
        self.metrics.set_queues([q.name for q in queues], self.definitions)
        if self.publisher is not None:
            self.publisher.definitions = self.definitions
            self.publisher.changed()

    def start(self) -> None:
        """Start the background tasks (on the running event loop)."""
        self.hub.start()
        if self.publisher is not None:
            self.publisher.start()

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.stop()
        await self.hub.stop()
