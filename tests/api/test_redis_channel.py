"""The one loop that follows a Redis channel (wallboard, desks, profile announcements), on the real Redis."""

from __future__ import annotations

import asyncio
import os
import uuid

import redis.asyncio as aioredis

from app.services import redis_channel

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_messages_reach_the_handler() -> None:
    channel = f"test-{uuid.uuid4().hex}"
    got: list[str] = []
    subscribed = asyncio.Event()
    task = asyncio.create_task(redis_channel.follow(REDIS_URL, channel, got.append, subscribed, "test"))
    try:
        await asyncio.wait_for(subscribed.wait(), 5)
        client = aioredis.from_url(REDIS_URL)
        await client.publish(channel, "你好")
        await client.aclose()
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == ["你好"]
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)


async def test_a_cancelled_follower_always_stops() -> None:
    """redis-py 8.1 swallowed a cancellation landing while it subscribed and then listened forever
    (the service's shutdown hung in CI); cancelled at any moment, the follower must end."""
    channel = f"test-{uuid.uuid4().hex}"
    for delay in (0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05) * 3:
        task = asyncio.create_task(
            redis_channel.follow(REDIS_URL, channel, lambda _m: None, asyncio.Event(), "test")
        )
        await asyncio.sleep(delay)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, f"still following 5 s after a cancel {delay * 1000:g} ms in"
