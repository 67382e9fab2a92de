"""A discrete-event simulation of one queue, driving the real ``Engine`` (not a model of it).

Callers arrive as a Poisson process; handle times are exponential or log-normal; callers may give up
after an exponential patience; agents answer ``ring_delay`` seconds after their phone starts ringing.
Optionally a share of offers meets a busy phone (486: the engine's busy delay applies) or a phone
nobody answers (it rings for the queue's ring timeout; the agent is set not ready and is ready again
``ready_again_after`` seconds later, as a person pressing "ready" would be).
The engine is woken at every deadline it asks for, exactly as the AMI shell does, and its commands
are carried out by the simulated phones. Calls are counted when they arrive within the measured
window (after ``warmup``); the run continues past the window until every counted call is settled.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass, replace
from enum import StrEnum

from acd import commands as cmd
from acd import events as ev
from acd.engine import CallState, Engine
from acd.queues_config import QueueConfig, Strategy

QUEUE = "sim"


class HandleTimes(StrEnum):
    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"


@dataclass(frozen=True, slots=True)
class Scenario:
    agents: int
    calls_per_hour: float
    handle_time: float  # mean talk time, seconds
    hours: float = 8.0  # measured window
    warmup: float = 1800.0  # seconds simulated before the window opens
    distribution: HandleTimes = HandleTimes.EXPONENTIAL
    lognormal_cv: float = 1.0  # standard deviation / mean of log-normal handle times
    patience: float | None = None  # mean seconds a caller waits before hanging up (None: forever)
    ring_delay: float = 0.0
    wrap_up: float = 0.0
    threshold: float = 15.0
    strategy: Strategy = Strategy.LONGEST_IDLE
    seed: int = 1
    busy_share: float = 0.0  # share of offers a phone answers busy
    no_answer_share: float = 0.0  # share of offers that ring unanswered until the ring timeout
    ready_again_after: float = 0.0  # seconds a not-ready agent (missed call) takes to be ready again

    @property
    def work_time(self) -> float:
        """Mean seconds an agent is held per answered call: what Erlang's models call handle time."""
        return self.handle_time + self.wrap_up + self.ring_delay


@dataclass(frozen=True, slots=True)
class Outcome:
    offered: int
    answered: int
    abandoned: int
    answered_within: int
    total_wait: float  # seconds, answered calls
    busy_seconds: float  # agent time ringing, talking or in wrap-up within the window
    agent_seconds: float  # agents x window length
    events: int  # events fed to the engine

    @property
    def service_level(self) -> float:
        """Answered within the threshold / offered (the 15-second connection rate)."""
        return self.answered_within / self.offered if self.offered else 0.0

    @property
    def asa(self) -> float:
        return self.total_wait / self.answered if self.answered else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.offered if self.offered else 0.0

    @property
    def occupancy(self) -> float:
        return self.busy_seconds / self.agent_seconds if self.agent_seconds else 0.0


def run(scenario: Scenario) -> Outcome:
    return _Simulation(scenario).run()


def replicate(scenario: Scenario, replicas: int) -> list[Outcome]:
    """Independent runs of the scenario with seeds ``seed``, ``seed + 1``, ...: the spread of a
    window of this length, e.g. to judge a short measured run, or a confidence interval."""
    return [run(replace(scenario, seed=scenario.seed + i)) for i in range(replicas)]


class _Simulation:
    def __init__(self, s: Scenario) -> None:
        self.s = s
        config = QueueConfig(
            QUEUE,
            ring_timeout=max(15.0, s.ring_delay + 5),
            wrap_up=s.wrap_up,
            strategy=s.strategy,
            service_level=s.threshold,
        )
        # Separate streams, so that changing one feature leaves the others' samples unchanged.
        self.arrivals = random.Random(f"{s.seed}-arrivals")
        self.handling = random.Random(f"{s.seed}-handling")
        self.patience = random.Random(f"{s.seed}-patience")
        self.phones = random.Random(f"{s.seed}-phones")
        self.ring_timeout = config.ring_timeout
        self.engine = Engine({QUEUE: config}, rng=random.Random(f"{s.seed}-routing"))
        self.pending: list[tuple[float, int, str, str]] = []  # (time, seq, kind, id)
        self.seq = itertools.count()
        self.start, self.end = s.warmup, s.warmup + s.hours * 3600
        self.busy_since: dict[str, float] = {}
        self.offered = self.answered = self.abandoned = self.within = self.events = 0
        self.total_wait = self.busy = 0.0
        if s.distribution is HandleTimes.LOGNORMAL:
            sigma2 = math.log(1 + s.lognormal_cv**2)
            self.ln_mu, self.ln_sigma = math.log(s.handle_time) - sigma2 / 2, math.sqrt(sigma2)

    def run(self) -> Outcome:
        for i in range(self.s.agents):
            self.feed(ev.AgentAvailable(0.0, f"a{i}", f"a{i}", frozenset({QUEUE}), order=i))
        self.at(self.arrivals.expovariate(self.s.calls_per_hour / 3600), "arrive", "")
        calls = itertools.count()
        while self.pending or self.engine.calls:
            deadline = self.engine.next_deadline()
            if deadline is not None and (not self.pending or deadline <= self.pending[0][0]):
                self.feed(ev.TimePassed(deadline))
                continue
            now, _, kind, key = heapq.heappop(self.pending)
            if kind == "arrive":
                call_id = f"c{next(calls)}"
                if self.start <= now < self.end:
                    self.offered += 1
                self.feed(ev.CallArrived(now, call_id, QUEUE, "", ""))
                if self.s.patience is not None:
                    self.at(now + self.patience.expovariate(1 / self.s.patience), "give_up", call_id)
                following = now + self.arrivals.expovariate(self.s.calls_per_hour / 3600)
                if following < self.end:
                    self.at(following, "arrive", "")
            elif kind == "answer":
                self.feed(ev.OfferAnswered(now, key))
            elif kind in ("busy", "no_answer"):
                reason = ev.OfferFailure.BUSY if kind == "busy" else ev.OfferFailure.NO_ANSWER
                self.feed(ev.OfferFailed(now, key, reason))
            elif kind == "ready":
                i = int(key[1:])
                self.feed(ev.AgentAvailable(now, key, key, frozenset({QUEUE}), order=i))
            elif kind == "end":
                self.feed(ev.AgentLegEnded(now, key))
            elif kind == "leg_gone":
                self.feed(ev.AgentLegGone(now, key))
            elif kind == "give_up":
                call = self.engine.calls.get(key)
                if call is not None and call.state is not CallState.CONNECTED:
                    self.feed(ev.CallerHungUp(now, key))
        return Outcome(
            self.offered,
            self.answered,
            self.abandoned,
            self.within,
            self.total_wait,
            self.busy,
            self.s.agents * (self.end - self.start),
            self.events,
        )

    def at(self, when: float, kind: str, key: str) -> None:
        heapq.heappush(self.pending, (when, next(self.seq), kind, key))

    def feed(self, event: ev.Event) -> None:
        self.events += 1
        for out in self.engine.handle(event):
            match out:
                case cmd.RingAgent(offer_id=offer_id):
                    self.at(*self.phone_takes(event.at), offer_id)
                case cmd.AgentMissedOffer(agent_id=agent_id):  # (also comes with AgentExhaustedNoAnswer)
                    self.at(event.at + self.s.ready_again_after, "ready", agent_id)
                case cmd.HangUpOffer(offer_id=offer_id):
                    self.at(event.at, "leg_gone", offer_id)  # the simulated phone stops ringing at once
                case cmd.CallAnswered(enqueued_at=enqueued, answered_at=answered, call_id=call_id):
                    offer_id = self.engine.calls[call_id].offer_id or ""
                    self.at(answered + self.handle_time(), "end", offer_id)
                    if self.start <= enqueued < self.end:
                        self.answered += 1
                        self.total_wait += answered - enqueued
                        self.within += answered - enqueued <= self.s.threshold
                case cmd.CallAbandoned(enqueued_at=enqueued):
                    self.abandoned += self.start <= enqueued < self.end
                case cmd.AgentActivityChanged(agent_id=agent_id, activity=activity, at=at):
                    if activity is cmd.Activity.IDLE:
                        since = self.busy_since.pop(agent_id, None)
                        if since is not None:
                            self.busy += max(0.0, min(at, self.end) - max(since, self.start))
                    else:
                        self.busy_since.setdefault(agent_id, at)

    def phone_takes(self, ringing_at: float) -> tuple[float, str]:
        """When and how the phone settles an offer: answered, busy at once, or rung out."""
        if self.s.busy_share or self.s.no_answer_share:
            draw = self.phones.random()
            if draw < self.s.busy_share:
                return ringing_at, "busy"
            if draw < self.s.busy_share + self.s.no_answer_share:
                return ringing_at + self.ring_timeout, "no_answer"
        return ringing_at + self.s.ring_delay, "answer"

    def handle_time(self) -> float:
        if self.s.distribution is HandleTimes.LOGNORMAL:
            return self.handling.lognormvariate(self.ln_mu, self.ln_sigma)
        return self.handling.expovariate(1 / self.s.handle_time)
