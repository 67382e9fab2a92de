"""Following a Redis pub/sub channel for as long as the process runs.

The wallboard hub, the agents' desk hub and the profile announcements each listen to one channel;
this is their one loop: subscribe, hand every message on, and when Redis goes away say so, wait
(0.5 s doubling to 10 s) and subscribe again. ``subscribed`` is set while the subscription holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0
POLL_SECONDS = 1.0


async def follow(
    redis_url: str,
    channel: str,
    on_message: Callable[[str], Awaitable[None] | None],
    subscribed: asyncio.Event,
    what: str,
) -> None:
    """Call ``on_message`` with each message's text, forever; ``what`` names the channel in logs."""
    delay = FIRST_RETRY_SECONDS
    task = asyncio.current_task()
    while True:
        client = aioredis.from_url(redis_url)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                subscribed.set()
                delay = FIRST_RETRY_SECONDS
                while True:
                    # redis-py (8.1) can swallow a cancellation that lands while it subscribes and
                    # then listen forever: the process would never stop. So poll, and honour a
                    # pending cancellation ourselves.
                    if task is not None and task.cancelling():
                        raise asyncio.CancelledError
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_SECONDS)
                    if message is None or message.get("type") != "message":
                        continue
                    raw = message["data"]
                    outcome = on_message(raw.decode() if isinstance(raw, bytes) else str(raw))
                    if outcome is not None:
                        await outcome
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s lost, retrying in %.1f s: %s", what, delay, exc)
        finally:
            subscribed.clear()
            await client.aclose()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_SECONDS)
