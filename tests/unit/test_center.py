"""Distribution and presence together: requests, missed calls, pending busy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acd import commands as cmd
from acd import events as ev
from acd.center import MISSED_CALL, ContactCenter
from acd.engine import CallState, QueueConfig
from agents.presence import AgentState, Cause, PresenceError, Transition

Q = "general"
A = Cause.AGENT


def center(**config: float) -> ContactCenter:
    return ContactCenter([QueueConfig(Q, **config)])


def rings(out: list) -> list[cmd.RingAgent]:
    return [c for c in out if isinstance(c, cmd.RingAgent)]


def call(c: ContactCenter, call_id: str, at: float) -> list:
    return c.handle(ev.CallArrived(at, call_id, Q, "13800000000", f"PJSIP/citizens-{call_id}"))


def test_login_does_not_take_calls_until_ready() -> None:
    c = center()
    call(c, "c1", 0)
    out = c.log_in("1001", "agent1", 1, A, "alice")
    assert [t.to_state for t in out if isinstance(t, Transition)] == [AgentState.LOGGED_IN]
    assert rings(out) == []
    out = c.make_ready("1001", 2, A, "alice")
    assert [r.endpoint for r in rings(out)] == ["agent1"]
    assert c.presence.get("1001").state is AgentState.RINGING


def test_missed_call_sets_not_ready_with_system_cause() -> None:
    c = center()
    c.log_in("1001", "agent1", 0, A, "alice")
    c.make_ready("1001", 0, A, "alice")
    [ring] = rings(call(c, "c1", 1))
    c.handle(ev.OfferFailed(16, ring.offer_id, ev.OfferFailure.NO_ANSWER))
    agent = c.presence.get("1001")
    assert (agent.state, agent.reason) == (AgentState.NOT_READY, MISSED_CALL)
    assert c.engine.calls["c1"].state is CallState.WAITING


def test_busy_during_a_call_applies_after_it_and_stops_new_offers() -> None:
    c = center()
    c.log_in("1001", "agent1", 0, A, "alice")
    c.make_ready("1001", 0, A, "alice")
    [ring] = rings(call(c, "c1", 1))
    c.handle(ev.OfferAnswered(3, ring.offer_id))
    assert c.make_busy("1001", "toilet", 10, A, "alice") == []  # pending, no transition yet
    call(c, "c2", 11)
    out = c.handle(ev.CallerHungUp(20, "c1"))
    assert rings(out) == []
    agent = c.presence.get("1001")
    assert (agent.state, agent.reason, agent.since) == (AgentState.BUSY, "toilet", 20)


def test_ready_without_login_is_refused() -> None:
    with pytest.raises(PresenceError):
        center().make_ready("1001", 0, A, "alice")


def test_ready_during_wrap_up_ends_it_early() -> None:
    c = center(wrap_up=60)
    c.log_in("1001", "agent1", 0, A, "alice")
    c.make_ready("1001", 0, A, "alice")
    [ring] = rings(call(c, "c1", 1))
    c.handle(ev.OfferAnswered(2, ring.offer_id))
    c.handle(ev.CallerHungUp(10, "c1"))
    c.handle(ev.AgentLegGone(10.1, ring.offer_id))
    assert c.presence.get("1001").state is AgentState.WRAP_UP
    call(c, "c2", 11)
    out = c.make_ready("1001", 12, A, "alice")
    assert [r.call_id for r in rings(out)] == ["c2"]


# -- properties -------------------------------------------------------------------------------------

AGENTS = ["a1", "a2", "a3"]
actions = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.integers(0, 9)),
        st.tuples(st.just("hangup"), st.integers(0, 9)),
        st.tuples(st.just("ready"), st.sampled_from(AGENTS)),
        st.tuples(st.just("busy"), st.sampled_from(AGENTS)),
        st.tuples(st.just("answer"), st.integers(0, 5)),
        st.tuples(st.just("fail"), st.integers(0, 5)),
        st.tuples(st.just("agent_hangup"), st.integers(0, 5)),
        st.tuples(st.just("tick"), st.integers(0, 40)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_no_call_is_lost_or_double_offered_and_no_agent_gets_two_calls(
    steps: list[tuple[str, object]],
) -> None:
    c = center(ring_timeout=10, wrap_up=5)
    for a in AGENTS:
        c.log_in(a, f"ep-{a}", 0, A, a)
    now, arrived, ended = 0.0, set(), set()
    for kind, arg in steps:
        now += 1
        out: list = []
        offers = sorted(c.engine.offers)
        if kind == "call" and f"c{arg}" not in arrived:
            arrived.add(f"c{arg}")
            out = call(c, f"c{arg}", now)
        elif kind == "hangup":
            out = c.handle(ev.CallerHungUp(now, f"c{arg}"))
        elif kind == "ready":
            out = c.make_ready(str(arg), now, A, "x")
        elif kind == "busy":
            out = c.make_busy(str(arg), "break", now, A, "x")
        elif kind in ("answer", "fail", "agent_hangup") and offers:
            offer_id = offers[int(arg) % len(offers)]
            if kind == "answer":
                out = c.handle(ev.OfferAnswered(now, offer_id))
            elif kind == "fail":
                out = c.handle(ev.OfferFailed(now, offer_id, ev.OfferFailure.NO_ANSWER))
            else:
                out = c.handle(ev.AgentLegEnded(now, offer_id))
        elif kind == "tick":
            now += float(arg)
            out = c.handle(ev.TimePassed(now))
        for o in out:
            if isinstance(o, cmd.CallAbandoned | cmd.CallFinished):
                assert o.call_id not in ended, "a call ended twice"
                ended.add(o.call_id)
        # invariants
        engine = c.engine
        assert arrived == ended | set(engine.calls), "a call was lost"
        by_call = [o.call_id for o in engine.offers.values()]
        assert len(by_call) == len(set(by_call)), "a call offered to two agents"
        by_agent = [o.agent_id for o in engine.offers.values()]
        assert len(by_agent) == len(set(by_agent)), "an agent holds two calls"
        for offer in engine.offers.values():
            assert engine.agents[offer.agent_id].call_id == offer.call_id
