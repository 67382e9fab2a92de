"""The load test's invariants: each compares what Asterisk did (AMI) with what the service recorded
(database, API, ``/metrics``, its log) and says pass or fail, with examples of what broke.

None of them involves a timing: a slow machine makes the KPIs worse, never an invariant fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from loadtest.observe import CAUSE_BUSY, Observation

#: presence reason the service gives when it sets an agent not ready after an unanswered offer
FINAL_OUTCOMES = frozenset({"answered", "abandoned", "overflowed"})
_EXAMPLES = 5


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    checked: int  # how many things were looked at
    detail: str = ""
    examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "passed": self.passed,
            "checked": self.checked,
            "detail": self.detail,
            "examples": self.examples,
        }


def _check(name: str, checked: int, failures: list[str], detail: str = "") -> Check:
    text = detail or (f"{len(failures)} of {checked} broken" if failures else f"all {checked} hold")
    return Check(name, not failures, checked, text, failures[:_EXAMPLES])


@dataclass(frozen=True)
class CallRow:
    """The service's record of one call (``calls`` joined with its tickets)."""

    id: str
    caller_number: str | None
    outcome: str
    agent_id: str | None
    enqueued_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    tickets: int


@dataclass(frozen=True)
class Transition:
    agent_id: str
    at: float  # epoch seconds
    to_state: str
    reason: str


def one_final_outcome(obs: Observation, rows: Mapping[str, CallRow]) -> Check:
    failures = []
    for uid, caller in obs.callers.items():
        row = rows.get(uid)
        if row is None:
            failures.append(f"{caller.number} ({uid}): no call record")
        elif row.outcome not in FINAL_OUTCOMES:
            failures.append(f"{caller.number} ({uid}): still {row.outcome}")
    for uid, row in rows.items():
        if uid not in obs.callers:
            failures.append(f"{row.caller_number} ({uid}): recorded, but Asterisk never queued it")
    return _check("every queued call has exactly one final outcome", len(obs.callers), failures)


def answered_iff_bridged(
    obs: Observation, rows: Mapping[str, CallRow], endpoint_of: Mapping[str, str]
) -> Check:
    """``endpoint_of``: agent id -> the endpoint it was logged in at."""
    failures = []
    for uid, caller in obs.callers.items():
        row = rows.get(uid)
        answered = row is not None and row.outcome == "answered"
        if caller.bridged_endpoint is None and answered:
            failures.append(f"{caller.number}: answered by {row.agent_id} but never bridged")  # type: ignore[union-attr]
        elif caller.bridged_endpoint is not None and not answered:
            failures.append(
                f"{caller.number}: bridged with {caller.bridged_endpoint} but recorded "
                f"{row.outcome if row else 'nowhere'}"
            )
        elif answered and endpoint_of.get(row.agent_id or "") != caller.bridged_endpoint:  # type: ignore[union-attr]
            failures.append(
                f"{caller.number}: bridged with {caller.bridged_endpoint}, recorded agent {row.agent_id}"  # type: ignore[union-attr]
            )
    return _check(
        "answered exactly when Asterisk bridged it, with the bridged phone's agent",
        len(obs.callers),
        failures,
    )


def one_ticket_per_answered(rows: Mapping[str, CallRow]) -> Check:
    failures = [
        f"{row.caller_number}: {row.outcome} with {row.tickets} tickets"
        for row in rows.values()
        if row.tickets != (1 if row.outcome == "answered" else 0)
    ]
    return _check("exactly one ticket per answered call (none otherwise)", len(rows), failures)


def _overlaps(groups: Iterable[tuple[str, list]], what: str) -> tuple[int, list[str]]:
    checked, failures = 0, []
    for key, legs in groups:
        for earlier, later in itertools.pairwise(legs):
            checked += 1
            if earlier.ended_at is None or later.created_at < earlier.ended_at:
                gap = (earlier.ended_at - later.created_at) * 1000 if earlier.ended_at else float("inf")
                failures.append(f"{key}: {later.channel} {what} {gap:.2f} ms before {earlier.channel} ended")
    return checked, failures


def no_caller_offered_twice(obs: Observation) -> Check:
    checked, failures = _overlaps(obs.legs_by_number().items(), "began")
    return _check("no caller offered to two agents at once", checked, failures)


def no_offer_over_live_leg(obs: Observation) -> Check:
    checked, failures = _overlaps(obs.legs_by_endpoint().items(), "offered")
    return _check("no phone offered a call while its previous leg still exists", checked, failures)


def busy_is_not_missed(
    obs: Observation, transitions: list[Transition], endpoint_of: Mapping[str, str]
) -> Check:
    """The README: a busy (486) phone only delays its agent's next offer; a missed call sets not ready.

    For every not-ready transition set by the system, the phone's last leg before it must not have
    ended busy (cause 17).
    """
    legs = obs.legs_by_endpoint()
    failures, checked = [], 0
    for t in transitions:
        if t.to_state != "not_ready":
            continue
        checked += 1
        before = [
            leg
            for leg in legs.get(endpoint_of.get(t.agent_id, ""), [])
            if leg.ended_at and leg.ended_at <= t.at + 0.5
        ]
        if before and before[-1].cause == CAUSE_BUSY:
            failures.append(
                f"agent {t.agent_id} set not ready ({t.reason}) after a 486 on {before[-1].channel}"
            )
    busy_legs = sum(1 for leg in obs.legs.values() if leg.cause == CAUSE_BUSY)
    check = _check("a busy (486) phone is never treated as a missed call", checked, failures)
    return Check(
        check.name, check.passed, checked, f"{check.detail}; {busy_legs} legs ended busy", check.examples
    )


def nothing_waiting(api_waiting: int, open_rows: int, live_channels: list[str]) -> Check:
    failures = []
    if api_waiting:
        failures.append(f"the API shows {api_waiting} calls waiting")
    if open_rows:
        failures.append(f"{open_rows} call records still waiting or ringing")
    failures += [f"channel still up: {name}" for name in live_channels]
    return _check("nothing waiting at the end (API, database, Asterisk)", 3, failures, "; ".join(failures))


def metrics_match_database(deltas: Mapping[str, float], database: Mapping[str, int]) -> Check:
    failures = [
        f"{name}: /metrics grew by {deltas.get(name, 0):g}, database says {count}"
        for name, count in database.items()
        if deltas.get(name, 0) != count
    ]
    return _check("metrics deltas equal the database", len(database), failures)


def clean_log(lines: list[str]) -> Check:
    bad = [
        line[:300]
        for line in lines
        if '"level": "error"' in line
        or '"level": "critical"' in line
        or "Traceback" in line
        or " ERROR " in line
    ]
    return _check(
        "no ERROR or traceback in the service log", len(lines), bad, f"{len(bad)} of {len(lines)} lines"
    )
