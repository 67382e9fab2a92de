"""Failures of feature-code login: a burst of wrong PINs is one incident, from its first failure."""

from __future__ import annotations

import itertools

from agents.compliance import IncidentClosed, IncidentKind, IncidentOpened
from agents.login_guard import LoginGuard


def guard(**kwargs: float) -> LoginGuard:
    ids = itertools.count(1)
    return LoginGuard(lambda: f"p{next(ids)}", **kwargs)  # type: ignore[arg-type]


def test_a_burst_opens_one_incident_starting_at_its_first_failure() -> None:
    g = guard(burst=3, window=60)
    assert g.failure("1001", "agent1", 10) == []
    assert g.failure("1001", "agent2", 20) == []
    [opened] = g.failure("1001", "agent3", 30)
    assert opened == IncidentOpened("p1", "1001", IncidentKind.LOGIN_PIN_FAILURES, "agent3", 10, 30)
    assert g.failure("1001", "agent3", 40) == []  # still the same burst
    assert g.next_deadline() == 100
    [closed] = g.tick(100)
    assert isinstance(closed, IncidentClosed) and (closed.started_at, closed.ended_at) == (10, 100)
    assert g.next_deadline() is None


def test_failures_spread_out_are_no_burst() -> None:
    g = guard(burst=3, window=60)
    outputs = [o for at in (0, 50, 100, 150, 200) for o in g.failure("1001", "agent1", at)]
    assert outputs == []
    assert g.failures("1001") == 2


def test_a_good_login_closes_the_incident_and_resets_the_count() -> None:
    g = guard(burst=2, window=60)
    g.failure("1001", "agent1", 0)
    [opened] = g.failure("1001", "agent1", 1)
    [closed] = g.success("1001", 5)
    assert (closed.incident_id, closed.ended_at) == (opened.incident_id, 5)
    assert g.failure("1001", "agent1", 6) == []


def test_agents_are_counted_apart() -> None:
    g = guard(burst=2, window=60)
    g.failure("1001", "agent1", 0)
    assert g.failure("1002", "agent1", 1) == []
