"""Property tests over random event sequences with every routing rule switched on.

No call is lost (each one is waiting, ringing, talking, or ended exactly once), no call rings two
agents, no agent holds two calls, and the engine never leaves a ready, eligible agent idle while a
call it may take is waiting (the indexes agree with a naive scan).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from acd import commands as cmd
from acd import events as ev
from acd.commands import Activity
from acd.engine import CallState, Engine
from acd.queues_config import MAX_LEVEL, Destination, DestinationKind, NoAgents, QueueConfig, Strategy, Tier

AGENTS = ["a1", "a2", "a3", "a4"]
QUEUES = ["q1", "q2", "q3"]
FAILURES = list(ev.OfferFailure)


def configs(strategies: list[Strategy], reload: bool = False) -> tuple[QueueConfig, ...]:
    return (
        QueueConfig(
            "q1",
            strategy=strategies[0],
            skill="s1",
            tiers=(Tier(5, 0), Tier(3, 10), Tier(1, 30)),
            max_wait=40 if not reload else 20,
            overflow=Destination(DestinationKind.QUEUE, "q2"),
            announce_every=15,
            wrap_up=3,
            busy_delay=4,
            reject_delay=6,
            max_no_answer=2,
        ),
        QueueConfig(
            "q2",
            strategy=strategies[1],
            max_wait=60,
            overflow=Destination(DestinationKind.VOICEMAIL, "1"),
            when_no_agents=NoAgents.OVERFLOW if reload else NoAgents.WAIT,
            ring_timeout=8,
        ),
        QueueConfig("q3", strategy=strategies[2], skill="s2", wrap_up=0 if reload else 5),
    )


actions = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.integers(0, 11), st.sampled_from(QUEUES), st.integers(0, 2)),
        st.tuples(st.just("hangup"), st.integers(0, 11)),
        st.tuples(
            st.just("ready"),
            st.sampled_from(AGENTS),
            st.frozensets(st.sampled_from(QUEUES), min_size=1),
            st.integers(0, MAX_LEVEL),
        ),
        st.tuples(st.just("away"), st.sampled_from(AGENTS)),
        st.tuples(st.just("answer"), st.integers(0, 5)),
        st.tuples(st.just("fail"), st.integers(0, 5), st.sampled_from(FAILURES)),
        st.tuples(st.just("agent_hangup"), st.integers(0, 5)),
        st.tuples(st.just("leg_gone"), st.integers(0, 5)),
        st.tuples(st.just("tick"), st.integers(0, 30)),
        st.tuples(st.just("reload"), st.booleans()),
    ),
    min_size=10,
    max_size=80,
)


def min_level(engine: Engine, queue: str, waited: float) -> int:
    level = 0
    for tier in engine.queue_config(queue).tier_levels():
        if tier.after <= waited:
            level = tier.level
    return level


@settings(max_examples=400, deadline=None)
@given(actions, st.lists(st.sampled_from(list(Strategy)), min_size=3, max_size=3), st.integers(0, 3))
def test_no_call_lost_double_offered_or_stranded(
    steps: list[tuple], strategies: list[Strategy], seed: int
) -> None:
    e = Engine({c.name: c for c in configs(strategies)}, priority_step=10, rng=random.Random(seed))
    now, arrived, ended = 0.0, set(), set()
    for step in steps:
        now += 1
        kind = step[0]
        offers = sorted(e.offers)
        out: list[cmd.Command] = []
        if kind == "call" and f"c{step[1]}" not in arrived:
            arrived.add(f"c{step[1]}")
            out = e.handle(ev.CallArrived(now, f"c{step[1]}", step[2], "555", "chan", step[3]))
        elif kind == "hangup":
            out = e.handle(ev.CallerHungUp(now, f"c{step[1]}"))
        elif kind == "ready":
            _, agent, queues, level = step
            skills = {"s1": level, "s2": MAX_LEVEL - level}
            out = e.handle(ev.AgentAvailable(now, agent, agent, queues, skills, AGENTS.index(agent)))
        elif kind == "away":
            out = e.handle(ev.AgentUnavailable(now, step[1]))
        elif kind in ("answer", "fail", "agent_hangup") and offers:
            offer_id = offers[step[1] % len(offers)]
            if kind == "answer":
                out = e.handle(ev.OfferAnswered(now, offer_id))
            elif kind == "fail":
                out = e.handle(ev.OfferFailed(now, offer_id, step[2]))
            else:
                out = e.handle(ev.AgentLegEnded(now, offer_id))
        elif kind == "leg_gone" and e._legs:
            legs = sorted(e._legs)
            out = e.handle(ev.AgentLegGone(now, legs[step[1] % len(legs)]))
        elif kind == "tick":
            target = now + step[1]
            while (deadline := e.next_deadline()) is not None and deadline <= target:
                out += e.handle(ev.TimePassed(deadline))  # wake at each deadline, as the shells do
                now = deadline
            now = target
            out += e.handle(ev.TimePassed(now))
        elif kind == "reload":
            out = e.handle(ev.QueuesReconfigured(now, configs(strategies[::-1], reload=step[1])))

        for o in out:
            if isinstance(o, cmd.CallAbandoned | cmd.CallFinished | cmd.SendCallTo):
                assert o.call_id not in ended, "a call ended twice"
                ended.add(o.call_id)
            if isinstance(o, cmd.RingAgent):
                assert e.agents[o.agent_id].available, "an agent who is not ready was rung"

        assert arrived == ended | set(e.calls), "a call was lost"
        assert not ended & set(e.calls), "an ended call is still held"
        by_call = [o.call_id for o in e.offers.values()]
        assert len(by_call) == len(set(by_call)), "a call offered to two agents"
        by_agent = [o.agent_id for o in e.offers.values()]
        assert len(by_agent) == len(set(by_agent)), "an agent holds two calls"
        for offer in e.offers.values():
            assert e.agents[offer.agent_id].leg is None, "an agent was rung while its last leg may exist"
            assert e.agents[offer.agent_id].call_id == offer.call_id
            assert e.calls[offer.call_id].offer_id == offer.offer_id
        for call in e.calls.values():
            assert (call.state is CallState.WAITING) == (call.offer_id is None)

        # work conservation, checked against a naive scan of every agent
        if (deadline := e.next_deadline()) is not None and deadline <= now:
            continue  # a timer is due: the shell would wake the engine before anything else
        for call in e.calls.values():
            if call.state is not CallState.WAITING:
                continue
            needed = min_level(e, call.queue, now - call.key[0])
            skill = e.queue_config(call.queue).skill
            for agent in e.agents.values():
                level = MAX_LEVEL if skill is None else agent.skills.get(skill, 0)
                idle = (
                    agent.available
                    and agent.activity is Activity.IDLE
                    and agent.not_before is None
                    and agent.leg is None
                )
                assert not (idle and call.queue in agent.queues and level >= max(needed, 1)), (
                    f"{agent.agent_id} idle while {call.call_id} waits in {call.queue}"
                )
