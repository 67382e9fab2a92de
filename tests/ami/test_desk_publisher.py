"""The agent's desk as the publisher builds it, over the real service shell and the fake AMI server:
the screen pop (offer) from ringing to answer or miss, the call in hand, wrap-up and its end.

The pages and the push stream are tested in tests/browser/test_agent_page.py and, on the real
Asterisk, in tests/e2e/test_agent_desk.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from fake_ami import FakeAmi, encode, eventually
from pydantic import SecretStr
from test_distribution_shell import Calls, service_on, waiting_event

from acd.engine import QueueConfig
from agents.presence import Cause
from app.db.engine import make_engine, session_factory
from app.db.migrate import upgrade
from app.services.desk import DeskHub, DeskPublisher
from app.settings import Settings


async def test_pop_call_wrap_up_and_a_missed_offer(fake: FakeAmi, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    calls = Calls()
    service = await service_on(fake, calls)
    # The same service, with a 30 s wrap-up in its queue.
    service.reload_queues((QueueConfig("general", ring_timeout=7, wrap_up=30),))
    settings = Settings(jwt_secret=SecretStr("k" * 40))
    desk = DeskPublisher(service, settings, session_factory(engine), DeskHub(settings.redis_url, "test:desk"))
    try:
        service.log_in("1001", "agent1", Cause.AGENT, "alice")
        service.make_ready("1001", Cause.AGENT, "alice")
        assert desk.snapshot("1001")["state"] == "ready"

        # A phone that does not answer: the pop goes, the agent is not ready (missed call).
        fake.originate_reason = 3
        await fake.inject(waiting_event("1700000000.0", "13900139000"))
        await eventually(lambda: desk.snapshot("1001")["state"] == "not_ready", what="missed")
        assert desk.snapshot("1001")["offer"] is None
        await fake.inject(encode([("Event", "Hangup"), ("Uniqueid", "1700000000.0"), ("Cause", "16")]))
        await eventually(lambda: not service.center.engine.waiting_calls(), what="caller gone")
        fake.originate_reason = 4
        service.make_ready("1001", Cause.AGENT, "alice")

        fake.originate_delay = 0.5  # the phone rings half a second, then answers
        await fake.inject(waiting_event("1700000000.1", "13800138000"))
        await eventually(lambda: desk.snapshot("1001")["offer"] is not None, what="pop")
        offer = desk.snapshot("1001")["offer"]
        assert (offer["call_id"], offer["caller_number"], offer["queue"]) == (
            "1700000000.1",
            "13800138000",
            "general",
        )
        assert desk.snapshot("1001")["state"] == "ringing"
        assert desk.snapshot("1002")["offer"] is None  # nobody else's desk
        await eventually(lambda: desk.snapshot("1001")["state"] == "on_call", what="answered")
        snap = desk.snapshot("1001")
        assert snap["offer"] is None and snap["call"]["caller_number"] == "13800138000"
        assert snap["call"]["ended"] is False and snap["call"]["wait_seconds"] >= 0.5

        await fake.inject(encode([("Event", "Hangup"), ("Uniqueid", "1700000000.1"), ("Cause", "16")]))
        await eventually(lambda: desk.snapshot("1001")["state"] == "wrap_up", what="wrap-up")
        snap = desk.snapshot("1001")
        assert snap["call"]["ended"] is True
        assert 25 < snap["wrap_up_until"] - time.time() <= 30  # the countdown's end
        service.make_ready("1001", Cause.AGENT, "alice")  # ends wrap-up early
        assert desk.snapshot("1001")["state"] == "ready"
        assert desk.snapshot("1001")["wrap_up_until"] is None

        assert "9999" not in service.center.presence.agents  # reading a desk creates no agent
        desk.snapshot("9999")
        assert "9999" not in service.center.presence.agents
    finally:
        await desk.stop()
        await service.stop()
        engine.dispose()
