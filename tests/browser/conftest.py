"""The wallboard served for real: the application in uvicorn on loopback, its AMI link logged in to
the socket-level fake AMI server (tests/ami/fake_ami.py), Redis for the push stream, SQLite.

Calls are placed by injecting the dialplan's ``AcdCallWaiting`` event into the fake AMI, so what the
tests see went the whole way: AMI event, core, listener, Redis pub/sub, stream, page.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from app.api import auth, wallboard
from app.api.deps import get_settings_dep
from app.db.engine import make_engine, session_factory
from app.db.migrate import upgrade
from app.db.models import Role
from app.main import create_app
from app.observability.wiring import Observability
from app.services.users import create_user
from app.settings import Settings
from tests.ami.fake_ami import FakeAmi, encode
from tests.waiting import wait_until

PASSWORD = "wallboard-test-password"
METRICS_TOKEN = "browser-test-metrics-token"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopThread:
    """An event loop in a thread, for the servers under test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class Served:
    """An ASGI app in uvicorn on a free loopback port, on ``loop``."""

    def __init__(self, app: FastAPI, loop: LoopThread) -> None:
        self.app = app
        self.loop = loop
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Open streams never finish by themselves: shutdown cuts them after a short grace period.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self._serving = asyncio.run_coroutine_threadsafe(self.server.serve(), loop.loop)
        deadline = time.monotonic() + 30
        while not self.server.started:
            if self._serving.done():
                self._serving.result()  # raises what stopped it
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self._serving.result(15)


class Center:
    """The running service as the tests drive it."""

    def __init__(self, tmp: Path) -> None:
        self.loop = LoopThread()
        self.ami = FakeAmi()
        self.loop.run(self.ami.start())
        self.ami.originate_reason = None  # agents' phones ring until the test says otherwise
        url = f"sqlite:///{tmp / 'hotline.sqlite3'}"
        upgrade(url)
        self.db = make_engine(url)
        with session_factory(self.db)() as session:
            create_user(session, "sup", PASSWORD, Role.supervisor)
            for agent_id in ("1001", "1002", "1003"):
                create_user(session, f"agent{agent_id}", PASSWORD, Role.agent, agent_id)
        self.settings = Settings(
            ami_port=self.ami.port,
            ami_username=self.ami.username,
            ami_secret=SecretStr(self.ami.secret),
            ami_reconnect_max_delay=1.0,
            database_url=url,
            jwt_secret=SecretStr("browser-test-signing-key-0123456789abcdef"),
            wallboard_channel=f"hotline:test:{uuid.uuid4().hex}",
            wallboard_busy_limit_seconds=3600.0,
            timezone="UTC",
            metrics_token=SecretStr(METRICS_TOKEN),
        )
        # "break" over its own limit (2 s here) is what the page highlights.
        reasons = tmp / "busy_reasons.toml"
        reasons.write_text(
            '[reasons.break]\nname = "Short break"\ncode = 1\nlimit_minutes = 0.0333334\n'
            '[reasons.training]\nname = "Training"\ncode = 5\nproductive = true\n'
            '[reasons.meal]\nname = "Meal"\ncode = 3\nneeds_approval = true\n'
        )
        previous = os.environ.get("HOTLINE_BUSY_REASONS_FILE")
        os.environ["HOTLINE_BUSY_REASONS_FILE"] = str(reasons)
        try:
            self.app = create_app(self.settings)
        finally:
            if previous is None:
                os.environ.pop("HOTLINE_BUSY_REASONS_FILE")
            else:
                os.environ["HOTLINE_BUSY_REASONS_FILE"] = previous
        self.owner = Served(self.app, self.loop)
        self.worker: Served | None = None
        self.wait_until(lambda: self.app.state.distribution.link.up, 10, "AMI link up")

    def start_worker(self) -> Served:
        """A second API process' worth: the wallboard without distribution, fed through Redis."""
        sessions = session_factory(self.db)
        observability = Observability(self.settings, sessions, None)

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> Any:
            observability.start()
            yield
            await observability.stop()

        app = FastAPI(lifespan=lifespan)
        app.include_router(auth.router)
        app.include_router(wallboard.router)
        app.state.session_factory = sessions
        app.state.observability = observability
        app.dependency_overrides[get_settings_dep] = lambda: self.settings
        self.worker = Served(app, self.loop)
        self.wait_until(observability.hub.subscribed.is_set, 10, "worker subscribed to Redis")
        return self.worker

    def token(self, username: str, base_url: str | None = None) -> str:
        response = httpx.post(
            f"{base_url or self.owner.base_url}/api/v1/token",
            data={"username": username, "password": PASSWORD},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def place_call(self, uniqueid: str, number: str = "13800138000") -> None:
        event = encode(
            [
                ("Event", "UserEvent"),
                ("Privilege", "user,all"),
                ("Channel", f"PJSIP/citizens-{uniqueid}"),
                ("Uniqueid", uniqueid),
                ("CallerIDNum", number),
                ("UserEvent", "AcdCallWaiting"),
                ("Queue", "general"),
                ("CallPriority", "0"),
            ]
        )
        self.loop.run(self.ami.inject(event))

    def hang_up(self, uniqueid: str) -> None:
        event = encode(
            [
                ("Event", "Hangup"),
                ("Privilege", "call,all"),
                ("Channel", f"PJSIP/citizens-{uniqueid}"),
                ("Uniqueid", uniqueid),
                ("Cause", "16"),
            ]
        )
        self.loop.run(self.ami.inject(event))

    def agent(self, agent_id: str, action: str, **body: str) -> None:
        headers = {"Authorization": f"Bearer {self.token(f'agent{agent_id}')}"}
        response = httpx.post(
            f"{self.owner.base_url}/api/v1/agents/{agent_id}/{action}", json=body or None, headers=headers
        )
        assert response.status_code == 200, response.text

    @staticmethod
    def wait_until(probe: Any, timeout: float, what: str) -> Any:
        return wait_until(probe, timeout, what, interval=0.05)

    def close(self) -> None:
        for served in (self.worker, self.owner):
            if served is not None:
                served.stop()
        self.loop.run(self.ami.close())
        self.loop.close()
        self.db.dispose()


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    running = Center(tmp_path_factory.mktemp("wallboard"))
    try:
        yield running
    finally:
        running.close()
