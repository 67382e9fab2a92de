"""Agent profiles reach the running core at once, whoever changed them.

The API process that runs distribution applies a change itself right after storing it. Anything
else that writes profiles (the ``hotline agents`` CLI, another API process) announces the change on
a Redis channel; the distribution process re-reads every profile from the database and applies them
(``replace``: the database is the truth). A lost announcement is repaired by the next one, and at
the latest by the next start, which always reads the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis
from sqlalchemy.orm import Session, sessionmaker

from app.services import redis_channel
from app.services.agent_profiles import load_profiles
from app.services.distribution import DistributionService

log = logging.getLogger(__name__)


def announce_change(redis_url: str, channel: str) -> bool:
    """Tell the running service that profiles changed; False (and why, logged) if Redis is away."""
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.publish(channel, "changed")
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("profile change not announced (Redis): %s", exc)
        return False
    return True


class ProfileSync:
    """In the distribution process: applies the stored profiles at start and on every announcement."""

    def __init__(
        self,
        service: DistributionService,
        sessions: sessionmaker[Session],
        redis_url: str,
        channel: str,
        *,
        on_applied: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.sessions = sessions
        self.redis_url = redis_url
        self.channel = channel
        self.on_applied = on_applied
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def reload(self) -> int:
        """Read every profile from the database and apply them to the core."""
        profiles = await asyncio.to_thread(self._read)
        self.service.set_profiles(profiles, replace=True)
        if self.on_applied is not None:
            self.on_applied()
        return len(profiles)

    def _read(self) -> list:
        with self.sessions() as session:
            return load_profiles(session)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="profile-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _follow(self) -> None:
        await redis_channel.follow(
            self.redis_url, self.channel, self._apply, self.subscribed, "profile announcements"
        )

    async def _apply(self, _message: str) -> None:
        count = await self.reload()
        log.info("agent profiles applied", extra={"agents": count})
