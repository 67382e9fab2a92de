"""Cost of the core's read interface: ``ContactCenter.snapshot`` for the live views.

Run: ``python benchmarks/bench_snapshot.py [--repeat N]``.

Setup: 20 queues, 2,000 agents logged in with profiles (3 skills each, 1,500 of them busy with a
reason so calls wait), 1,000 waiting or ringing calls. Measured side by side in one run, CPU time of
this process (``time.process_time``):

* ``snapshot``: the whole center as frozen plain data (every queue with its calls, every agent with
  presence and profile), what the wallboard, ``/queues``, the supervisor view and the metrics read;
* ``direct reads``: what those views used to do instead, reaching into the engine and presence (the
  waiting calls of each queue, every agent's presence), producing no data of its own.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from acd import events as ev
from acd.center import ContactCenter
from acd.queues_config import QueueConfig
from acd.views import AgentProfile
from agents.presence import Cause

QUEUES, AGENTS, CALLS = 20, 2_000, 1_000


def build(seed: int) -> ContactCenter:
    rng = random.Random(seed)
    names = [f"q{i}" for i in range(QUEUES)]
    center = ContactCenter([QueueConfig(n, skill=n) for n in names])
    profiles = []
    for i in range(AGENTS):
        skills = {q: rng.randint(1, 5) for q in rng.sample(names, 3)}
        profiles.append(AgentProfile(str(10_000 + i), f"坐席{i}", frozenset(skills), skills, i))
    center.set_profiles(profiles, 0.0)
    for i, profile in enumerate(profiles):
        center.log_in(profile.agent_id, f"agent{i}", 0.0, Cause.AGENT, profile.agent_id)
        if i < AGENTS * 3 // 4:
            center.make_busy(profile.agent_id, "training", 0.0, Cause.AGENT, profile.agent_id)
        else:
            center.make_ready(profile.agent_id, 0.0, Cause.AGENT, profile.agent_id)
    for i in range(CALLS):
        center.handle(
            ev.CallArrived(1.0 + i / 100, f"c{i}", rng.choice(names), "13800000000", f"PJSIP/t-{i}")
        )
    return center


def direct_reads(center: ContactCenter) -> int:
    engine, presence = center.engine, center.presence
    seen = 0
    for name in sorted(engine.queues):
        seen += len(engine.waiting_calls(name))
        engine.staffed(name)
    for agent in presence.agents.values():
        seen += agent.state is not None
    return seen


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        samples.append((time.process_time() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    center = build(args.seed)
    snap = center.snapshot(100.0)
    waiting = len(snap.calls)
    print(f"{len(snap.queues)} queues, {len(snap.agents)} agents, {waiting} calls not yet answered")
    results = {
        "snapshot": timed(lambda: center.snapshot(100.0), args.repeat),
        "direct reads": timed(lambda: direct_reads(center), args.repeat),
    }
    print(f"{'':14}{'median ms':>10}{'p90 ms':>10}{'max ms':>10}")
    for name, samples in results.items():
        q = statistics.quantiles(samples, n=10)
        print(f"{name:14}{statistics.median(samples):>10.2f}{q[-1]:>10.2f}{max(samples):>10.2f}")
    ratio = statistics.median(results["snapshot"]) / statistics.median(results["direct reads"])
    print(f"snapshot / direct reads, medians: {ratio:.2f}")


if __name__ == "__main__":
    main()
