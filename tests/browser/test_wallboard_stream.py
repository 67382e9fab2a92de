"""``GET /api/v1/wallboard`` and its Server-Sent Events stream, in the owner and in another worker."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from typing import Any

import httpx
import pytest

from app.db.engine import session_factory
from app.db.models import Role
from app.services.users import create_user, revoke_tokens, set_active, set_role
from tests.browser.conftest import METRICS_TOKEN, PASSWORD, Center

CALLER = "13900139000"


class Listener:
    """Reads an SSE stream in a thread; ``snapshots`` collects every ``snapshot`` event."""

    def __init__(self, base_url: str, token: str) -> None:
        self.snapshots: queue.Queue[dict[str, Any]] = queue.Queue()
        self.status: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base_url, token), daemon=True)
        self._thread.start()

    def _run(self, base_url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with (
            contextlib.suppress(httpx.RemoteProtocolError),  # the server cuts open streams at shutdown
            httpx.Client(timeout=httpx.Timeout(5, read=30)) as client,
            client.stream("GET", f"{base_url}/api/v1/wallboard/stream", headers=headers) as response,
        ):
            self.status = response.status_code
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("data: "):
                    self.snapshots.put(json.loads(line.removeprefix("data: ")))

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                snapshot = self.snapshots.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching snapshot within {timeout} s") from None
            if predicate(snapshot):
                return snapshot

    def close(self) -> None:
        self._stop.set()


def waiting_ids(snapshot: dict[str, Any]) -> set[str]:
    return {c["id"] for q in snapshot["queues"] for c in q["calls"]}


def test_the_wallboard_is_for_supervisors_and_shows_no_caller_numbers(center: Center) -> None:
    url = f"{center.owner.base_url}/api/v1/wallboard"
    assert httpx.get(url).status_code == 401
    agent = center.token("agent1001")
    assert httpx.get(url, headers={"Authorization": f"Bearer {agent}"}).status_code == 403
    stream = httpx.get(f"{url}/stream", headers={"Authorization": f"Bearer {agent}"})
    assert stream.status_code == 403
    center.place_call("1700000100.1", CALLER)
    headers = {"Authorization": f"Bearer {center.token('sup')}"}
    board = center.wait_until(
        lambda: (b := httpx.get(url, headers=headers).json()) and "1700000100.1" in waiting_ids(b) and b,
        5,
        "the call on the board",
    )
    assert CALLER not in json.dumps(board)
    [general] = board["queues"]
    assert general["calls_waiting"] >= 1 and general["service_level_seconds"] == 15
    assert set(board["targets"]) == {"connection_rate", "service_level_rate", "abandonment_rate"}
    assert board["ami_up"] is True


def test_a_new_call_reaches_stream_clients_of_every_worker_within_a_second(center: Center) -> None:
    worker = center.worker or center.start_worker()
    owner_stream = Listener(center.owner.base_url, center.token("sup"))
    worker_stream = Listener(worker.base_url, center.token("sup", worker.base_url))
    try:
        # both streams start with the current board
        owner_stream.wait_for(lambda s: True, 5)
        worker_stream.wait_for(lambda s: True, 5)
        placed = time.monotonic()
        center.place_call("1700000200.1")
        for stream in (owner_stream, worker_stream):
            stream.wait_for(lambda s: "1700000200.1" in waiting_ids(s), 1.0)
        assert time.monotonic() - placed < 1.5
        # the worker's plain GET reads what the owner published to Redis
        headers = {"Authorization": f"Bearer {center.token('sup', worker.base_url)}"}
        board = httpx.get(f"{worker.base_url}/api/v1/wallboard", headers=headers).json()
        assert "1700000200.1" in waiting_ids(board)
        # an agent's state change is pushed too
        center.agent("1003", "login", endpoint="agent3")
        center.agent("1003", "busy", reason="training")
        worker_stream.wait_for(
            lambda s: any(
                (a["id"], a["state"], a["reason"]) == ("1003", "busy", "training") for a in s["agents"]
            ),
            1.0,
        )
    finally:
        owner_stream.close()
        worker_stream.close()


def test_metrics_need_the_metrics_token_or_a_supervisor(center: Center) -> None:
    url = f"{center.owner.base_url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    agent = {"Authorization": f"Bearer {center.token('agent1001')}"}
    assert httpx.get(url, headers=agent).status_code == 403
    for token in (METRICS_TOKEN, center.token("sup")):
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert "hotline_ami_up 1.0" in response.text
        assert 'hotline_queue_calls_waiting{queue="general"}' in response.text


def _read_until_closed(base_url: str, token: str, timeout: float) -> tuple[list[str], float]:
    """Every SSE event name of the stream until the server closes it; and how long that took."""
    events, started = [], time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(timeout=httpx.Timeout(5, read=timeout)) as client,
        client.stream("GET", f"{base_url}/api/v1/wallboard/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
    return events, time.monotonic() - started


@pytest.mark.parametrize("change", ["disable", "revoke", "set-role"])
def test_a_stream_ends_when_its_user_loses_access(center: Center, change: str) -> None:
    name = f"lead-{change}"
    with session_factory(center.db)() as session:
        create_user(session, name, PASSWORD, Role.supervisor)
    token = center.token(name)

    def take_access_away() -> None:
        time.sleep(1.0)
        with session_factory(center.db)() as session:
            match change:
                case "disable":
                    set_active(session, name, False)
                case "revoke":
                    revoke_tokens(session, name)
                case "set-role":
                    set_role(session, name, Role.agent, "1009")

    changer = threading.Thread(target=take_access_away)
    changer.start()
    events, took = _read_until_closed(center.owner.base_url, token, timeout=20)
    changer.join()
    assert events[0] == "snapshot" and events[-1] == "end", events
    assert 1.0 <= took < 4.0, took  # re-checked every 0.5 s here, not at the 300 s cap
    again = httpx.get(
        f"{center.owner.base_url}/api/v1/wallboard/stream", headers={"Authorization": f"Bearer {token}"}
    )
    assert again.status_code == 401
