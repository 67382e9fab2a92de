"""Time per state from an agent's transitions: the daily agent log. No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.presence import AgentState, Transition


@dataclass(slots=True)
class StateTotals:
    """Seconds an agent spent in each state within a window (like VICIdial's agent log)."""

    by_state: dict[AgentState, float] = field(default_factory=lambda: dict.fromkeys(AgentState, 0.0))
    busy_by_reason: dict[str, float] = field(default_factory=dict)
    not_ready_by_reason: dict[str, float] = field(default_factory=dict)
    logins: int = 0

    @property
    def logged_in(self) -> float:
        return sum(seconds for state, seconds in self.by_state.items() if state is not AgentState.LOGGED_OUT)


def state_totals(transitions: Iterable[Transition], start: float, end: float) -> StateTotals:
    """Fold ``transitions`` (oldest first; include the last one before ``start``) over ``[start, end)``."""
    totals = StateTotals()
    state, reason, since = AgentState.LOGGED_OUT, "", start

    def add(until: float) -> None:
        seconds = min(until, end) - max(since, start)
        if seconds <= 0:
            return
        totals.by_state[state] += seconds
        if state is AgentState.BUSY:
            totals.busy_by_reason[reason] = totals.busy_by_reason.get(reason, 0.0) + seconds
        elif state is AgentState.NOT_READY:
            totals.not_ready_by_reason[reason] = totals.not_ready_by_reason.get(reason, 0.0) + seconds

    for t in transitions:
        if t.at >= end:
            break
        add(t.at)
        if t.from_state is AgentState.LOGGED_OUT and start <= t.at:
            totals.logins += 1
        state, reason, since = t.to_state, t.reason, t.at
    add(end)
    return totals
