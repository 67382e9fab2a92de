"""Routing benchmark: 2,000 agents, 1,000 waiting calls, 20 skills, one Python process on one core.

Run: ``python benchmarks/bench_routing.py [--cycles N] [--seed S]``.

Setup: 20 queues, one per skill, each with tiers 5 at 0 s, 3 at 20 s, 1 at 60 s and the longest-idle
strategy. Every agent holds 3 random skills at random levels 1-5 and serves those 3 queues. Calls
arrive in random queues until every agent is on the phone and 1,000 calls wait.

Steady state, one cycle: a random talking agent hangs up (``AgentLegEnded``: the
engine picks the next call for that agent, or leaves it idle), the new offer is answered, and a new
call arrives (``CallArrived``: the engine picks an idle agent for it, if one may take it). A *routing
decision* is one ``Engine.handle`` call whose output rings an agent; its time includes bookkeeping of
the event itself. Three phases of ``--cycles`` cycles each: throughput (events per second over the
whole loop, no per-event timers), the engine's decisions timed one by one, and the naive baseline.

Naive baseline, measured on the very same states: before each event, a scan of every waiting call
(for an agent who is freed) or of every agent (for an arriving call) finds the same choice without
indexes. Agreement with the engine's choice is counted as a check.

Times are CPU time of this process (``time.process_time``), so other work on a shared machine does not
inflate them; on an idle machine they equal wall time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Iterable

from acd import commands as cmd
from acd import events as ev
from acd.commands import Activity
from acd.engine import Agent, Call, CallState, Engine
from acd.queues_config import MAX_LEVEL, QueueConfig, Tier

AGENTS, WAITING, SKILLS = 2_000, 1_000, 20
TIERS = (Tier(5, 0.0), Tier(3, 20.0), Tier(1, 60.0))


def min_level(waited: float) -> int:
    level = TIERS[0].level
    for tier in TIERS:
        if tier.after <= waited:
            level = tier.level
    return level


def naive_call_for(engine: Engine, agent: Agent, now: float) -> Call | None:
    """Scan every call: the earliest one in the agent's queues whose tier admits the agent's level."""
    best = None
    for call in engine.calls.values():
        if call.state is not CallState.WAITING or call.queue not in agent.queues:
            continue
        skill = engine.queue_config(call.queue).skill or ""
        admitted = agent.skills.get(skill, 0) >= min_level(now - call.key[0])
        if admitted and (best is None or call.key < best.key):
            best = call
    return best


def naive_agent_for(engine: Engine, queue: str, now: float, enqueued: float) -> Agent | None:
    """Scan every agent: the best level, then the longest idle, among ready agents of the queue."""
    skill = engine.queue_config(queue).skill or ""
    needed = min_level(now - enqueued)
    best, best_key = None, None
    for agent in engine.agents.values():
        if not (agent.available and agent.activity is Activity.IDLE and agent.not_before is None):
            continue
        level = agent.skills.get(skill, 0) if queue in agent.queues else 0
        if level >= needed:
            key = (-level, agent.idle_since)
            if best_key is None or key < best_key:
                best, best_key = agent, key
    return best


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build(rng: random.Random) -> tuple[Engine, list[str], float]:
    queues = {f"s{i}": QueueConfig(f"s{i}", skill=f"s{i}", tiers=TIERS) for i in range(SKILLS)}
    engine = Engine(queues)
    for i in range(AGENTS):
        skills = {s: rng.randint(1, MAX_LEVEL) for s in rng.sample(sorted(queues), 3)}
        engine.handle(ev.AgentAvailable(0.0, f"a{i}", f"ep{i}", frozenset(skills), skills, i))
    talking: list[str] = []
    now, n = 0.0, 0
    while sum(c.state is CallState.WAITING for c in engine.calls.values()) < WAITING or any(
        a.activity is Activity.IDLE for a in engine.agents.values()
    ):
        now += 0.05
        answer(engine, engine.handle(arrival(rng, now, n)), now, talking)
        n += 1
    return engine, talking, now


def arrival(rng: random.Random, now: float, n: int) -> ev.CallArrived:
    queue, priority = f"s{rng.randrange(SKILLS)}", rng.choice((0, 0, 0, 1))
    return ev.CallArrived(now, f"c{n}", queue, "555", f"chan{n}", priority)


def answer(engine: Engine, out: Iterable[cmd.Command], now: float, talking: list[str]) -> int:
    events = 0
    for ring in [o for o in out if isinstance(o, cmd.RingAgent)]:
        engine.handle(ev.OfferAnswered(now, ring.offer_id))
        talking.append(ring.offer_id)
        events += 1
    return events


class Driver:
    """The steady-state loop; each phase of the benchmark runs it a number of cycles."""

    def __init__(self, engine: Engine, talking: list[str], rng: random.Random, now: float) -> None:
        self.engine, self.talking, self.rng, self.now = engine, talking, rng, now
        self.n = len(engine.calls) * 2
        self.decisions: list[float] = []
        self.naive: list[float] = []
        self.agree = self.checked = 0

    def throughput(self, cycles: int) -> tuple[int, float]:
        """Events fed and CPU seconds for the whole loop (its own bookkeeping included)."""
        engine, events = self.engine, 0
        started = time.process_time()
        for _ in range(cycles):
            self.now += 0.05
            out = engine.handle(ev.AgentLegEnded(self.now, self._hang_up()))
            events += 1 + answer(engine, out, self.now, self.talking)
            out = engine.handle(self._arrival())
            events += 1 + answer(engine, out, self.now, self.talking)
        return events, time.process_time() - started

    def timed(self, cycles: int, naive: bool) -> None:
        """Time each decision of the engine, or (``naive``) the naive scan on the same state."""
        engine, clock = self.engine, time.process_time
        for _ in range(cycles):
            self.now += 0.05
            offer_id = self._hang_up()
            agent = engine.agents[engine.offers[offer_id].agent_id]
            t0 = clock()
            expected_call = naive_call_for(engine, _freed(agent), self.now) if naive else None
            t1 = clock()
            out = engine.handle(ev.AgentLegEnded(self.now, offer_id))
            t2 = clock()
            rings = [o for o in out if isinstance(o, cmd.RingAgent)]
            if naive:
                self.naive.append(t1 - t0)
                if rings and rings[0].agent_id == agent.agent_id:
                    self.checked += 1
                    self.agree += expected_call is not None and rings[0].call_id == expected_call.call_id
            elif rings:
                self.decisions.append(t2 - t1)
            answer(engine, out, self.now, self.talking)

            event = self._arrival()
            virtual = self.now - event.priority * engine.priority_step
            t0 = clock()
            expected_agent = naive_agent_for(engine, event.queue, self.now, virtual) if naive else None
            t1 = clock()
            out = engine.handle(event)
            t2 = clock()
            rings = [o for o in out if isinstance(o, cmd.RingAgent)]
            if naive:
                self.naive.append(t1 - t0)
                if rings:
                    self.checked += 1
                    self.agree += expected_agent is not None and rings[0].agent_id == expected_agent.agent_id
            elif rings:
                self.decisions.append(t2 - t1)
            answer(engine, out, self.now, self.talking)

    def _hang_up(self) -> str:
        return self.talking.pop(self.rng.randrange(len(self.talking)))

    def _arrival(self) -> ev.CallArrived:
        self.n += 1
        return arrival(self.rng, self.now, self.n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20_000, help="cycles per phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    engine, talking, now = build(rng)
    waiting = sum(c.state is CallState.WAITING for c in engine.calls.values())
    print(f"setup: {len(engine.agents)} agents, {waiting} calls waiting, {len(engine.queues)} skills/queues")

    driver = Driver(engine, talking, rng, now)
    events, spent = driver.throughput(args.cycles)
    driver.timed(args.cycles, naive=False)
    # The naive scans run in their own phase, so that their sweep over memory does not slow the
    # engine's timed decisions down (cache); the engine keeps running to move the state on.
    driver.timed(args.cycles, naive=True)

    waiting = sum(c.state is CallState.WAITING for c in engine.calls.values())
    us = 1e6
    print(f"after 3 x {args.cycles} cycles: {waiting} calls waiting")
    print()
    print(f"{'':28}{'samples':>10}{'median µs':>12}{'p99 µs':>12}{'max µs':>12}")
    phases = (("engine, one decision", driver.decisions), ("naive scan, one decision", driver.naive))
    for name, values in phases:
        print(
            f"{name:28}{len(values):10}{statistics.median(values) * us:12.1f}"
            f"{percentile(values, 0.99) * us:12.1f}{max(values) * us:12.1f}"
        )
    print()
    print(f"events through the core: {events} in {spent:.2f} s CPU = {events / spent:,.0f} events/s")
    agreement = f"{driver.agree} of {driver.checked}"
    print(f"naive scan agrees with the engine's choice in {agreement} checked decisions")


def _freed(agent: Agent) -> Agent:
    """The agent as it will be once its call is over (for the naive scan, before the event)."""
    return Agent(agent.agent_id, agent.endpoint, agent.queues, skills=agent.skills)


if __name__ == "__main__":
    main()
