"""Fixtures for the AMI link tests: a fake AMI server and links with small, test-sized intervals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_ami import FakeAmi, LinkFactory, Recorder, eventually

from acd.ami import AmiLink


@pytest.fixture
async def fake() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def make_link(fake: FakeAmi) -> AsyncIterator[LinkFactory]:
    links: list[AmiLink] = []

    def factory(**overrides: Any) -> tuple[AmiLink, Recorder]:
        recorder = Recorder()
        kwargs: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": fake.port,
            "username": fake.username,
            "secret": fake.secret,
            "on_event": recorder.on_event,
            "on_connected": recorder.on_connected,
            "on_disconnected": recorder.on_disconnected,
            "ping_interval": 0.2,
            "ping_timeout": 0.2,
            "reconnect_min_delay": 0.02,
            "reconnect_max_delay": 0.1,
            "action_timeout": 1.0,
        }
        kwargs.update(overrides)
        link = AmiLink(**kwargs)
        links.append(link)
        return link, recorder

    yield factory
    for link in links:
        await asyncio.wait_for(link.stop(), 5)


@pytest.fixture
async def up_link(make_link: LinkFactory) -> tuple[AmiLink, Recorder]:
    """A link that is logged in to the fake server."""
    link, recorder = make_link()
    await link.start()
    await eventually(lambda: link.up, what="link up")
    return link, recorder
