"""Issue 8, item 11: failed logins are throttled per username and per address; hashing is bounded."""

# ruff: noqa: F811  (fixtures imported below are used as parameters)
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from app.services import users
from app.services.login_throttle import LoginThrottle

from .conftest import PASSWORD
from .whole_service import service_factory  # noqa: F401  (fixture)


def _login(client: TestClient, username: str, password: str) -> tuple[int, dict[str, str], str]:
    response = client.post("/api/v1/token", data={"username": username, "password": password})
    return response.status_code, dict(response.headers), response.text


def test_after_the_failures_allowed_even_the_right_password_waits(
    service_factory: Callable[..., TestClient],
) -> None:
    client = service_factory(login_max_failures_per_user=3, login_max_failures_per_address=50)
    assert [_login(client, "alice", "wrong password")[0] for _ in range(3)] == [401, 401, 401]
    code, headers, text = _login(client, "alice", PASSWORD)
    assert code == 429, text
    assert 1 <= int(headers["retry-after"]) <= 900
    assert "Too many failed logins" in text
    assert _login(client, "bob", PASSWORD)[0] == 200  # another user from the same address is not locked


def test_one_address_spraying_names_is_throttled(service_factory: Callable[..., TestClient]) -> None:
    client = service_factory(login_max_failures_per_user=50, login_max_failures_per_address=5)
    assert [_login(client, f"nobody{i}", "x" * 10)[0] for i in range(5)] == [401] * 5
    code, headers, _ = _login(client, "bob", PASSWORD)
    assert code == 429 and int(headers["retry-after"]) >= 1


def test_password_checks_run_at_most_n_at_once(
    service_factory: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = service_factory(login_concurrent_hashes=2, login_hash_wait_seconds=60)
    running, peak, lock = 0, 0, threading.Lock()
    real = users.verify_password

    def counting(password: str, password_hash: str) -> tuple[bool, str | None]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real(password, password_hash)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(users, "verify_password", counting)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: _login(client, "alice", PASSWORD)[0], range(8)))
    assert codes == [200] * 8
    assert peak == 2


def test_the_window_slides() -> None:
    throttle = LoginThrottle(per_user=2, per_address=10, window=60)
    throttle.failed("li", "10.0.0.1", 0)
    throttle.failed("li", "10.0.0.1", 30)
    assert throttle.retry_after("li", "10.0.0.1", 31) == pytest.approx(29)
    assert throttle.retry_after("li", "10.0.0.1", 60.5) is None  # the first failure left the window
    throttle.failed("li", "10.0.0.1", 61)
    assert throttle.retry_after("li", "10.0.0.1", 62) == pytest.approx(28)
    throttle.succeeded("li")
    assert throttle.retry_after("li", "10.0.0.1", 62) is None


def test_a_login_that_waits_too_long_for_a_password_check_gets_503(
    service_factory: Callable[..., TestClient],
) -> None:
    client = service_factory(login_concurrent_hashes=1, login_hash_wait_seconds=0.01)
    with ThreadPoolExecutor(6) as pool:  # one argon2 check (~0.1 s) at a time, 10 ms of patience
        results = list(pool.map(lambda _: _login(client, "alice", PASSWORD), range(6)))
    codes = sorted(code for code, _, _ in results)
    assert 200 in codes and 503 in codes, codes
    assert set(codes) <= {200, 503}
    refused = next(headers for code, headers, _ in results if code == 503)
    assert refused["retry-after"] == "1"
