"""The routing configuration the service runs with: the queues file, or default queues by name."""

from __future__ import annotations

from acd.queues_config import QueueConfig, RoutingConfig
from acd.queues_config import load as load_queues
from app.settings import Settings


def routing_config(settings: Settings) -> RoutingConfig:
    """The queues: from the queues file when one is named, else one default queue per name."""
    if settings.queues_file:
        return load_queues(settings.queues_file)
    return RoutingConfig(
        tuple(QueueConfig(name, ring_timeout=settings.ring_timeout) for name in settings.queues)
    )
