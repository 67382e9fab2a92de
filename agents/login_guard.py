"""Feature-code login with a PIN: failures counted, a burst of them is an incident. No I/O, no clock.

Dialling ``*21<agent id>*<PIN>`` (or ``*21<agent id>`` and the PIN at the prompt) logs an agent in
at a phone; without the right PIN anyone could log anyone in at any phone, which is the presence
fraud the product exists to stop. Each refused attempt for an existing agent is a failure, kept per
agent (the account under attack). ``burst`` failures within ``window`` seconds open one
``login_pin_failures`` incident: it starts at the burst's first failure, names the phone the last
attempt came from, and closes when the agent logs in with its PIN or when ``window`` seconds pass
without another failure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.compliance import IncidentClosed, IncidentKind, IncidentOpened

BURST_FAILURES = 3
BURST_WINDOW_SECONDS = 300.0

Output = IncidentOpened | IncidentClosed


@dataclass(slots=True)
class _Attempts:
    failures: deque[float] = field(default_factory=deque)
    open: IncidentOpened | None = None


class LoginGuard:
    def __init__(
        self,
        new_id: Callable[[], str],
        *,
        burst: int = BURST_FAILURES,
        window: float = BURST_WINDOW_SECONDS,
    ) -> None:
        if burst < 1 or window <= 0:
            raise ValueError("a burst is at least one failure within a positive window")
        self.burst = burst
        self.window = window
        self._new_id = new_id
        self._agents: dict[str, _Attempts] = {}

    def failure(self, agent_id: str, endpoint: str, at: float) -> list[Output]:
        """A refused PIN for ``agent_id`` from the phone ``endpoint``."""
        out = self.tick(at)
        attempts = self._agents.setdefault(agent_id, _Attempts())
        attempts.failures.append(at)
        while attempts.failures and attempts.failures[0] < at - self.window:
            attempts.failures.popleft()
        if attempts.open is None and len(attempts.failures) >= self.burst:
            attempts.open = IncidentOpened(
                self._new_id(), agent_id, IncidentKind.LOGIN_PIN_FAILURES, endpoint, attempts.failures[0], at
            )
            out.append(attempts.open)
        return out

    def success(self, agent_id: str, at: float) -> list[Output]:
        """The agent logged in with its PIN: the count starts again."""
        out = self.tick(at)
        attempts = self._agents.pop(agent_id, None)
        if attempts is not None and attempts.open is not None:
            out.append(self._closed(attempts.open, at))
        return out

    def failures(self, agent_id: str) -> int:
        """Failures within the current window (as of the last fact)."""
        attempts = self._agents.get(agent_id)
        return len(attempts.failures) if attempts else 0

    def tick(self, at: float) -> list[Output]:
        """Time passed: bursts quiet for a whole window are over."""
        out: list[Output] = []
        for agent_id, attempts in list(self._agents.items()):
            last = attempts.failures[-1] if attempts.failures else None
            if last is not None and at < last + self.window:
                continue
            if attempts.open is not None:
                out.append(self._closed(attempts.open, last + self.window if last is not None else at))
            del self._agents[agent_id]
        return out

    def next_deadline(self) -> float | None:
        return min((a.failures[-1] + self.window for a in self._agents.values() if a.failures), default=None)

    @staticmethod
    def _closed(opened: IncidentOpened, at: float) -> IncidentClosed:
        o = opened
        return IncidentClosed(o.incident_id, o.agent_id, o.kind, o.reason, o.started_at, at)
