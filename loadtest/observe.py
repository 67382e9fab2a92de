"""What Asterisk reported during a phase, rebuilt from the load test's AMI events.

Times are Asterisk's own event ``Timestamp`` (epoch seconds, µs). A *caller* is a citizen's channel
that reached the queue (``UserEvent AcdCallWaiting``, or ``AcdFallback`` for app_queue); a *leg* is
a channel to an agent phone (``PJSIP/agentN-…``), tied to its caller by the citizen's number, which
the ACD (and app_queue) put in the leg's caller id.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from loadtest.ami import Message

#: Asterisk's hangup cause for "user busy" (a 486 from the phone)
CAUSE_BUSY = 17


@dataclass
class Caller:
    uniqueid: str
    channel: str
    number: str
    waiting_at: float  # joined the queue (AcdCallWaiting, or AcdFallback for app_queue)
    bridged_at: float | None = None
    bridged_endpoint: str | None = None
    ended_at: float | None = None


@dataclass
class Leg:
    uniqueid: str
    channel: str
    endpoint: str
    created_at: float
    numbers: set[str] = field(default_factory=set)
    ended_at: float | None = None
    cause: int | None = None
    bridged_at: float | None = None

    @property
    def caller_number(self) -> str | None:
        return next(iter(self.numbers), None)


def endpoint_of(channel: str) -> str:
    """``PJSIP/agent7-0000002a`` -> ``agent7``."""
    name = channel.split("/", 1)[-1]
    return name.rsplit("-", 1)[0]


def _ts(event: Message) -> float:
    return float(event.get("Timestamp") or 0.0)


@dataclass
class Observation:
    """Callers, agent legs and bridges of one phase."""

    numbers: set[str]  # the phase's citizen numbers: other calls on the Asterisk are ignored
    endpoints: set[str]  # the run's agent phones
    waiting_event: str = "AcdCallWaiting"
    callers: dict[str, Caller] = field(default_factory=dict)  # by Uniqueid
    legs: dict[str, Leg] = field(default_factory=dict)  # by Uniqueid
    bridges: dict[str, set[str]] = field(default_factory=dict)  # BridgeUniqueid -> channel Uniqueids
    malformed: int = 0

    def feed(self, event: Message) -> None:
        try:
            self._feed(event)
        except (KeyError, ValueError):
            self.malformed += 1

    def _feed(self, event: Message) -> None:
        kind, uid, channel = event.get("Event", ""), event.get("Uniqueid", ""), event.get("Channel", "")
        if kind == "UserEvent" and event.get("UserEvent") == self.waiting_event:
            number = event.get("CallerIDNum", "")
            if number in self.numbers and uid not in self.callers:
                self.callers[uid] = Caller(uid, channel, number, _ts(event))
            return
        if kind == "Newchannel" and channel.startswith("PJSIP/"):
            endpoint = endpoint_of(channel)
            if endpoint in self.endpoints:
                self.legs[uid] = Leg(uid, channel, endpoint, _ts(event))
        leg = self.legs.get(uid)
        if leg is not None:
            for key in ("CallerIDNum", "ConnectedLineNum"):
                if event.get(key) in self.numbers:
                    leg.numbers.add(event[key])
        if kind == "BridgeEnter":
            members = self.bridges.setdefault(event["BridgeUniqueid"], set())
            members.add(uid)
            self._bridged(members, _ts(event))
        elif kind == "Hangup":
            if leg is not None and leg.ended_at is None:
                leg.ended_at, leg.cause = _ts(event), int(event.get("Cause") or 0)
            caller = self.callers.get(uid)
            if caller is not None and caller.ended_at is None:
                caller.ended_at = _ts(event)

    def _bridged(self, members: set[str], at: float) -> None:
        callers = [self.callers[m] for m in members if m in self.callers]
        legs = [self.legs[m] for m in members if m in self.legs]
        if len(callers) == 1 and len(legs) == 1 and callers[0].bridged_at is None:
            callers[0].bridged_at, callers[0].bridged_endpoint = at, legs[0].endpoint
            legs[0].bridged_at = at
            legs[0].numbers.add(callers[0].number)

    # -- derived views

    def legs_by_endpoint(self) -> dict[str, list[Leg]]:
        out: dict[str, list[Leg]] = {}
        for leg in sorted(self.legs.values(), key=lambda leg: leg.created_at):
            out.setdefault(leg.endpoint, []).append(leg)
        return out

    def legs_by_number(self) -> dict[str, list[Leg]]:
        out: dict[str, list[Leg]] = {}
        for leg in sorted(self.legs.values(), key=lambda leg: leg.created_at):
            if leg.caller_number is not None:
                out.setdefault(leg.caller_number, []).append(leg)
        return out

    def waiting_series(self) -> list[tuple[float, int]]:
        """(time, callers waiting) at every change: from joining until bridged or gone."""
        changes: list[tuple[float, int]] = []
        for caller in self.callers.values():
            changes.append((caller.waiting_at, 1))
            left = min(t for t in (caller.bridged_at, caller.ended_at, float("inf")) if t is not None)
            if left != float("inf"):
                changes.append((left, -1))
        series, level = [], 0
        for at, delta in sorted(changes):
            level += delta
            series.append((at, level))
        return series


def dispatch_latencies(
    obs: Observation, agent_free: dict[str, list[float]], delays: dict[int, float]
) -> list[float]:
    """Per leg: seconds from the moment both a caller was waiting and this phone was free to the leg.

    The caller waits from joining the queue, or again from the end of its previous leg (an offer that
    failed). The phone is free from the end of its previous leg, plus the queue's delay after a
    busy/rejecting phone (``delays`` by hangup cause), or from when its agent was (re)made ready
    (``agent_free``: times per endpoint). Whichever is later; the leg's creation is the ACD's answer.
    """
    by_number = obs.legs_by_number()
    callers = {c.number: c for c in obs.callers.values()}
    out = []
    for endpoint, legs in obs.legs_by_endpoint().items():
        ready_times = sorted(agent_free.get(endpoint, []))
        previous: Leg | None = None
        for leg in legs:
            caller = callers.get(leg.caller_number or "")
            if caller is None:
                previous = leg
                continue
            caller_since = caller.waiting_at
            for other in by_number.get(caller.number, []):
                if other is not leg and other.ended_at is not None and other.ended_at <= leg.created_at:
                    caller_since = max(caller_since, other.ended_at)
            phone_since = 0.0
            if previous is not None and previous.ended_at is not None:
                phone_since = previous.ended_at + delays.get(previous.cause or 0, 0.0)
            i = bisect.bisect_right(ready_times, leg.created_at)
            if i:
                phone_since = max(phone_since, ready_times[i - 1])
            since = max(caller_since, phone_since)
            if since <= leg.created_at:
                out.append(leg.created_at - since)
            previous = leg
    return out
