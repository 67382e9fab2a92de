"""What a load run does, drawn up front from seeds: citizen arrivals and patience, each phone's calls.

Every draw comes from a ``random.Random`` of its own (arrivals, patience, each phone), so a run is
reproducible from its seed and no two phones share a sequence.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from loadtest.sipp import PhoneAction, PhoneCall, PlannedCall

#: a phone's injection file holds this many calls; sipp starts over at the top after the last
PHONE_CALLS = 2000


@dataclass(frozen=True)
class Profile:
    """The load: agents, arrivals, the phones' behaviour and the callers' patience."""

    agents: int = 20
    calls_per_second: float = 2.0
    duration: float = 60.0  # seconds of arrivals
    max_calls: int = 5000  # arrivals beyond this are not placed
    busy_share: float = 0.05  # share of offers a phone answers with 486 Busy Here
    no_answer_share: float = 0.05  # share of offers a phone lets ring until the ACD gives up
    ring_min: float = 1.0  # an answering phone rings uniformly between min and max seconds
    ring_max: float = 4.0
    talk_mean: float = 30.0  # exponential talk time, seconds, clamped to [talk_min, talk_max]
    talk_min: float = 2.0
    talk_max: float = 300.0
    patience_mean: float = 60.0  # exponential caller patience in the queue, seconds
    seed: int = 1

    def __post_init__(self) -> None:
        if self.agents < 1 or self.calls_per_second <= 0 or self.duration <= 0 or self.max_calls < 1:
            raise ValueError("agents, rate, duration and max calls must be positive")
        if min(self.busy_share, self.no_answer_share) < 0 or self.busy_share + self.no_answer_share > 1:
            raise ValueError("busy and no-answer shares must be between 0 and 1 together")
        if not (0 < self.ring_min <= self.ring_max) or not (0 < self.talk_min <= self.talk_max):
            raise ValueError("ring and talk bounds must be positive and ordered")
        if self.talk_mean <= 0 or self.patience_mean <= 0:
            raise ValueError("talk and patience means must be positive")

    @property
    def ring_mean(self) -> float:
        return (self.ring_min + self.ring_max) / 2

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def citizen_calls(profile: Profile, number_prefix: str, *, phase: str = "acd") -> list[PlannedCall]:
    """Poisson arrivals over the profile's duration (at most max_calls), each with its patience."""
    arrivals = random.Random(f"{profile.seed}-{phase}-arrivals")
    patience = random.Random(f"{profile.seed}-{phase}-patience")
    calls: list[PlannedCall] = []
    at = arrivals.expovariate(profile.calls_per_second)
    while at < profile.duration and len(calls) < profile.max_calls:
        number = f"{number_prefix}{len(calls):05d}"
        calls.append(PlannedCall(round(at, 3), number, patience.expovariate(1 / profile.patience_mean)))
        at += arrivals.expovariate(profile.calls_per_second)
    return calls


def phone_calls(profile: Profile, phone: int, count: int = PHONE_CALLS) -> list[PhoneCall]:
    """The behaviour of phone number ``phone`` for its next ``count`` incoming dialogs."""
    rng = random.Random(f"{profile.seed}-phone-{phone}")
    calls = []
    for _ in range(count):
        draw = rng.random()
        if draw < profile.busy_share:
            action = PhoneAction.BUSY
        elif draw < profile.busy_share + profile.no_answer_share:
            action = PhoneAction.NO_ANSWER
        else:
            action = PhoneAction.ANSWER
        ring = rng.uniform(profile.ring_min, profile.ring_max)
        talk = min(max(rng.expovariate(1 / profile.talk_mean), profile.talk_min), profile.talk_max)
        ring_ms = 10**9 if action == PhoneAction.NO_ANSWER else round(ring * 1000)
        calls.append(PhoneCall(action, ring_ms, round(talk * 1000)))
    return calls
