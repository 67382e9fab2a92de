"""The rebuild after a (re)connect gives the event loop turns while it walks its lists."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

import pytest
from fake_ami import FakeAmi, eventually
from test_distribution_shell import Calls

from acd.ami import AmiLink
from acd.engine import QueueConfig
from agents.busy_reasons import DEFAULT_CONFIG
from agents.presence import Cause
from app.services import slices
from app.services.distribution import DistributionConfig, DistributionService
from app.services.presence_watch import PresenceWatch

N = 2000


class NullStore:
    """The compliance store's interface, storing nothing."""

    def close_dangling(self, at: float) -> int:
        return 0

    def record_transition(self, *args: object) -> None: ...

    def record_opened(self, *args: object) -> None: ...

    def record_closed(self, *args: object) -> None: ...


class Watcher:
    """Runs on every loop turn, noting what the rebuild has done so far."""

    def __init__(self, probe: Callable[[], int]) -> None:
        self.probe = probe
        self.seen: set[int] = set()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.seen.add(self.probe())
            await asyncio.sleep(0)


async def test_the_rebuild_lets_the_loop_run_between_slices(
    fake: FakeAmi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A turn after every item (with SLICE_SECONDS = 1e9, i.e. no slicing, both asserts below fail).
    monkeypatch.setattr(slices, "SLICE_SECONDS", 0.0)
    link = partial(
        AmiLink,
        host="127.0.0.1",
        port=fake.port,
        username=fake.username,
        secret=fake.secret,
        ping_interval=5,
        ping_timeout=5,
    )
    service = DistributionService(DistributionConfig((QueueConfig("general"),)), link, Calls())
    watch = PresenceWatch(service, NullStore(), DEFAULT_CONFIG)  # type: ignore[arg-type]
    for i in range(N):
        service.log_in(f"a{i}", f"p{i}", Cause.AGENT, "x")
    fake.devices = [(f"PJSIP/p{i}", "NOT_INUSE") for i in range(N)]
    # Legs of this service (known by their uniqueid prefix) in a context the rebuild does not query.
    fake.channels = [
        {"Channel": f"PJSIP/p{i}-0001", "Uniqueid": f"{service._leg_prefix}o{i}", "Context": "acd-agent"}
        for i in range(N)
    ]
    phones = Watcher(lambda: len(watch.tracker.phones))
    legs = Watcher(lambda: len(service._leg_names))
    await service.start()
    try:
        await eventually(lambda: len(watch.tracker.phones) == N and len(service._leg_names) == N, timeout=30)
        # The loop ran other work while each list was half walked.
        assert any(0 < n < N for n in phones.seen), sorted(phones.seen)[:5]
        assert any(0 < n < N for n in legs.seen), sorted(legs.seen)[:5]
        assert watch.tracker.phones["p7"].device == "NOT_INUSE"
    finally:
        phones.task.cancel()
        legs.task.cancel()
        await watch.stop()
        await service.stop()
