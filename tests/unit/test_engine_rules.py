"""The routing rules of issue 3: strategies, skills and tiers, priority aging, ring-no-answer, delays,
overflow, announcements and reload. Every test drives the engine with an explicit clock."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

import pytest

from acd import commands as cmd
from acd import events as ev
from acd.center import NO_ANSWER_LIMIT, ContactCenter
from acd.engine import CallState, Engine
from acd.queues_config import Destination, DestinationKind, NoAgents, QueueConfig, Strategy, Tier
from agents.presence import AgentState, Cause

Q = "general"


def engine(*configs: QueueConfig, **kwargs: object) -> Engine:
    return Engine({c.name: c for c in configs or (QueueConfig(Q),)}, **kwargs)  # type: ignore[arg-type]


def arrive(e: Engine, call_id: str, at: float, priority: int = 0, queue: str = Q) -> list[cmd.Command]:
    return e.handle(ev.CallArrived(at, call_id, queue, "555", f"PJSIP/c-{call_id}", priority))


def ready(
    e: Engine,
    agent_id: str,
    at: float,
    queues: frozenset[str] = frozenset({Q}),
    skills: Mapping[str, int] | None = None,
    order: int = 0,
) -> list[cmd.Command]:
    return e.handle(ev.AgentAvailable(at, agent_id, f"ep-{agent_id}", queues, skills or {}, order))


def rings(out: list[cmd.Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.agent_id) for c in out if isinstance(c, cmd.RingAgent)]


def of(out: list[cmd.Command], kind: type) -> list:
    return [c for c in out if isinstance(c, kind)]


def serve(e: Engine, call_id: str, at: float, talk: float) -> list[cmd.Command]:
    """Answer the call's current offer at ``at`` and hang up after ``talk`` seconds."""
    offer_id = e.calls[call_id].offer_id
    assert offer_id is not None
    e.handle(ev.OfferAnswered(at, offer_id))
    return e.handle(ev.AgentLegEnded(at + talk, offer_id))


# -- strategies -------------------------------------------------------------------------------------


def test_fewest_calls_picks_the_agent_with_fewest_answered_calls() -> None:
    e = engine(QueueConfig(Q, strategy=Strategy.FEWEST_CALLS))
    ready(e, "a1", 0)
    ready(e, "a2", 1)
    arrive(e, "c1", 2)
    serve(e, "c1", 2, 10)  # a1 (longest idle) answered one
    assert rings(arrive(e, "c2", 20)) == [("c2", "a2")]
    serve(e, "c2", 20, 1)
    arrive(e, "c3", 30)
    serve(e, "c3", 30, 1)  # tie 1-1: longest idle breaks it, a1 (idle since 12)
    assert e.agents["a1"].calls_answered == 2
    assert rings(arrive(e, "c4", 40)) == [("c4", "a2")]


def test_least_talk_time_picks_the_agent_who_talked_least() -> None:
    e = engine(QueueConfig(Q, strategy=Strategy.LEAST_TALK_TIME))
    ready(e, "a1", 0)
    ready(e, "a2", 1)
    arrive(e, "c1", 2)
    arrive(e, "c2", 2)
    serve(e, "c1", 2, 100)  # a1 talks 100 s
    serve(e, "c2", 2, 5)  # a2 talks 5 s
    assert rings(arrive(e, "c3", 200)) == [("c3", "a2")]


def test_top_down_always_starts_with_the_lowest_order() -> None:
    e = engine(QueueConfig(Q, strategy=Strategy.TOP_DOWN))
    ready(e, "x", 0, order=3)
    ready(e, "y", 5, order=1)
    ready(e, "z", 9, order=2)
    for i in range(3):
        assert rings(arrive(e, f"c{i}", 10 + i)) == [(f"c{i}", "y")]
        serve(e, f"c{i}", 10 + i, 0.5)


def test_round_robin_rotates_through_the_agents_in_order() -> None:
    e = engine(QueueConfig(Q, strategy=Strategy.ROUND_ROBIN))
    for name, order in (("a", 1), ("b", 2), ("c", 3)):
        ready(e, name, 0, order=order)
    got = []
    for i in range(6):
        [(_, agent)] = rings(arrive(e, f"c{i}", 10 + i))
        got.append(agent)
        serve(e, f"c{i}", 10 + i, 0.1)
    assert got == ["a", "b", "c", "a", "b", "c"]


def test_random_strategy_is_seeded_and_spreads_calls() -> None:
    def picks(seed: int) -> list[str]:
        e = engine(QueueConfig(Q, strategy=Strategy.RANDOM), rng=random.Random(seed))
        for a in "abcd":
            ready(e, a, 0)
        out = []
        for i in range(200):
            [(_, agent)] = rings(arrive(e, f"c{i}", 1 + i))
            out.append(agent)
            serve(e, f"c{i}", 1 + i, 0.1)
        return out

    first = picks(7)
    assert first == picks(7)  # deterministic with the same RNG
    assert first != picks(8)
    assert all(n > 25 for n in Counter(first).values())  # each of 4 agents gets a fair share of 200


def test_longest_idle_counts_from_the_end_of_the_last_call() -> None:
    e = engine()
    ready(e, "a1", 0)
    ready(e, "a2", 1)
    arrive(e, "c1", 2)
    serve(e, "c1", 2, 10)  # a1 idle again from 12, a2 idle since 1
    assert rings(arrive(e, "c2", 13)) == [("c2", "a2")]


# -- skills and tiers -------------------------------------------------------------------------------

TIERED = QueueConfig(Q, skill="tax", tiers=(Tier(5, 0), Tier(3, 20), Tier(1, 60)))


def test_call_prefers_the_best_skill_level_regardless_of_idle_time() -> None:
    e = engine(QueueConfig(Q, skill="tax"))
    ready(e, "novice", 0, skills={"tax": 1})
    ready(e, "expert", 5, skills={"tax": 5})
    ready(e, "nobody", 0, skills={"law": 5})
    assert rings(arrive(e, "c1", 10)) == [("c1", "expert")]
    assert rings(arrive(e, "c2", 11)) == [("c2", "novice")]  # no tiers: every level at once
    assert rings(arrive(e, "c3", 12)) == []  # an agent without the skill never gets it


def test_tiers_widen_to_lower_levels_after_their_waits() -> None:
    e = engine(TIERED)
    ready(e, "l3", 0, skills={"tax": 3})
    ready(e, "l1", 0, skills={"tax": 1})
    assert rings(arrive(e, "c1", 100)) == []
    assert e.next_deadline() == 120
    assert rings(e.handle(ev.TimePassed(119))) == []
    assert rings(e.handle(ev.TimePassed(120))) == [("c1", "l3")]
    e.handle(ev.OfferAnswered(121, str(e.calls["c1"].offer_id)))  # l3 is busy from now on
    arrive(e, "c2", 130)
    assert e.next_deadline() == 150
    assert rings(e.handle(ev.TimePassed(150))) == []  # level 3 admitted, but l3 is on the phone
    assert e.next_deadline() == 190  # the level-1 tier opens after 60 s
    assert rings(e.handle(ev.TimePassed(190))) == [("c2", "l1")]


def test_priority_counts_as_waiting_time_for_tiers() -> None:
    e = engine(TIERED, priority_step=30)
    ready(e, "l3", 0, skills={"tax": 3})
    assert rings(arrive(e, "urgent", 100, priority=1)) == [("urgent", "l3")]  # 30 s of credit > 20


# -- priority ---------------------------------------------------------------------------------------


def test_priority_first_fifo_within_and_aging_prevents_starvation() -> None:
    e = engine(priority_step=60)
    arrive(e, "old-low", 0)
    arrive(e, "mid-high", 30, priority=1)  # virtual time -30: ahead of old-low
    arrive(e, "b-high", 40, priority=1)  # virtual -20: behind mid-high (FIFO within a priority)
    arrive(e, "late-high", 90, priority=1)  # virtual 30: old-low (0) has aged past it
    order = [c.call_id for c in e.waiting_calls()]
    assert order == ["mid-high", "b-high", "old-low", "late-high"]
    got = []
    for i in range(4):
        [(call, _)] = rings(ready(e, f"a{i}", 100 + i))
        got.append(call)
    assert got == order


# -- ring-no-answer, busy and reject ----------------------------------------------------------------


def test_max_no_answer_in_a_row_asks_to_set_the_agent_busy() -> None:
    c = ContactCenter([QueueConfig(Q, max_no_answer=2)])
    c.log_in("1001", "ep", 0, Cause.AGENT, "alice")
    c.make_ready("1001", 0, Cause.AGENT, "alice")
    c.handle(ev.CallArrived(1, "c1", Q, "555", "PJSIP/c1"))
    offer = c.engine.calls["c1"].offer_id
    out = c.handle(ev.OfferFailed(16, str(offer), ev.OfferFailure.NO_ANSWER))
    assert not [o for o in out if isinstance(o, cmd.AgentExhaustedNoAnswer)]
    assert c.presence.get("1001").state is AgentState.NOT_READY
    c.make_ready("1001", 20, Cause.AGENT, "alice")
    offer = c.engine.calls["c1"].offer_id
    out = c.handle(ev.OfferFailed(35, str(offer), ev.OfferFailure.NO_ANSWER))
    assert [(o.agent_id, o.misses) for o in out if isinstance(o, cmd.AgentExhaustedNoAnswer)] == [("1001", 2)]
    agent = c.presence.get("1001")
    assert (agent.state, agent.reason) == (AgentState.BUSY, NO_ANSWER_LIMIT)
    assert c.engine.calls["c1"].state is CallState.WAITING


def test_an_answered_call_resets_the_no_answer_count() -> None:
    e = engine(QueueConfig(Q, max_no_answer=2))
    ready(e, "a", 0)
    arrive(e, "c1", 1)
    e.handle(ev.OfferFailed(2, str(e.calls["c1"].offer_id), ev.OfferFailure.NO_ANSWER))
    ready(e, "a", 3)
    serve(e, "c1", 4, 5)
    arrive(e, "c2", 10)
    out = e.handle(ev.OfferFailed(11, str(e.calls["c2"].offer_id), ev.OfferFailure.NO_ANSWER))
    assert of(out, cmd.AgentMissedOffer) and not of(out, cmd.AgentExhaustedNoAnswer)


@pytest.mark.parametrize(("reason", "delay"), [(ev.OfferFailure.BUSY, 7.0), (ev.OfferFailure.REJECTED, 12.0)])
def test_busy_or_rejecting_phone_waits_its_delay_then_gets_offers_again(
    reason: ev.OfferFailure, delay: float
) -> None:
    e = engine(QueueConfig(Q, busy_delay=7, reject_delay=12))
    ready(e, "a", 0)
    arrive(e, "c1", 1)
    out = e.handle(ev.OfferFailed(3, str(e.calls["c1"].offer_id), reason))
    assert [(d.agent_id, d.until) for d in of(out, cmd.AgentOfferDelayed)] == [("a", 3 + delay)]
    assert not of(out, cmd.AgentMissedOffer) and rings(out) == []
    assert e.agents["a"].available  # still ready, only held back
    assert e.next_deadline() == 3 + delay
    assert rings(e.handle(ev.TimePassed(3 + delay))) == [("c1", "a")]


def test_other_agents_are_offered_during_a_busy_delay() -> None:
    e = engine()
    ready(e, "a", 0)
    ready(e, "b", 1)
    arrive(e, "c1", 2)
    out = e.handle(ev.OfferFailed(3, str(e.calls["c1"].offer_id), ev.OfferFailure.BUSY))
    assert rings(out) == [("c1", "b")]


# -- wrap-up ----------------------------------------------------------------------------------------


def test_wrap_up_is_per_queue() -> None:
    e = engine(QueueConfig("short", wrap_up=5), QueueConfig("long", wrap_up=60))
    ready(e, "a", 0, frozenset({"short", "long"}))
    arrive(e, "c1", 1, queue="long")
    serve(e, "c1", 1, 10)
    assert e.next_deadline() == 71
    e.handle(ev.TimePassed(71))
    arrive(e, "c2", 80, queue="short")
    serve(e, "c2", 80, 10)
    assert e.next_deadline() == 95


# -- overflow ---------------------------------------------------------------------------------------

VOICEMAIL = Destination(DestinationKind.VOICEMAIL, "1000")


def test_max_wait_sends_the_call_to_its_overflow_destination() -> None:
    e = engine(QueueConfig(Q, max_wait=60, overflow=VOICEMAIL))
    arrive(e, "c1", 0)
    assert e.next_deadline() == 60
    out = e.handle(ev.TimePassed(60))
    assert [(s.call_id, s.destination, s.channel) for s in of(out, cmd.SendCallTo)] == [
        ("c1", VOICEMAIL, "PJSIP/c-c1")
    ]
    assert [(o.queue, o.reason) for o in of(out, cmd.CallOverflowed)] == [(Q, "max_wait")]
    assert "c1" not in e.calls
    assert rings(ready(e, "a", 61)) == []


def test_a_ringing_call_at_max_wait_finishes_its_ring_then_overflows_if_missed() -> None:
    e = engine(QueueConfig(Q, max_wait=60, overflow=VOICEMAIL))
    arrive(e, "c1", 0)
    ready(e, "a", 55)
    assert not of(e.handle(ev.TimePassed(60)), cmd.SendCallTo)
    out = e.handle(ev.OfferFailed(70, str(e.calls["c1"].offer_id), ev.OfferFailure.NO_ANSWER))
    assert [s.call_id for s in of(out, cmd.SendCallTo)] == ["c1"]


def test_overflow_into_another_queue_keeps_the_call_and_its_place() -> None:
    e = engine(
        QueueConfig("first", max_wait=30, overflow=Destination(DestinationKind.QUEUE, "second")),
        QueueConfig("second"),
    )
    arrive(e, "c1", 0, queue="first")
    arrive(e, "c2", 10, queue="second")
    out = e.handle(ev.TimePassed(30))
    assert not of(out, cmd.SendCallTo)
    assert [(o.call_id, o.destination.target) for o in of(out, cmd.CallOverflowed)] == [("c1", "second")]
    assert [c.call_id for c in e.waiting_calls("second")] == ["c1", "c2"]
    assert rings(ready(e, "a", 31, frozenset({"second"}))) == [("c1", "a")]


def test_no_agent_logged_in_overflows_at_once_when_configured() -> None:
    config = QueueConfig(Q, overflow=VOICEMAIL, when_no_agents=NoAgents.OVERFLOW)
    e = engine(config)
    out = arrive(e, "c1", 0)
    assert [(o.reason, o.call_id) for o in of(out, cmd.CallOverflowed)] == [("no_agents", "c1")]
    ready(e, "a", 1)
    e.handle(ev.AgentUnavailable(2, "a"))  # logged in but busy does not staff the queue
    assert of(arrive(e, "c2", 3), cmd.SendCallTo)
    ready(e, "a", 4)
    arrive(e, "c3", 5)  # rings a
    arrive(e, "c4", 6)  # waits: a is staffing, on the phone
    assert "c4" in e.calls
    out = e.handle(ev.AgentUnavailable(7, "a"))  # the last agent leaves: c4 goes, c3 keeps ringing
    assert [s.call_id for s in of(out, cmd.SendCallTo)] == ["c4"]
    assert e.calls["c3"].state is CallState.OFFERED


def test_queue_that_waits_keeps_calls_without_agents() -> None:
    e = engine(QueueConfig(Q, overflow=VOICEMAIL))
    assert not of(arrive(e, "c1", 0), cmd.CallOverflowed)


# -- announcements ----------------------------------------------------------------------------------


def test_announcements_give_position_and_estimate_every_period() -> None:
    e = engine(QueueConfig(Q, announce_every=30, handle_time_estimate=120))
    ready(e, "a1", 0)
    ready(e, "a2", 0)
    arrive(e, "c0", 1)  # rings a1
    arrive(e, "c1", 2)  # rings a2
    arrive(e, "c2", 5)
    arrive(e, "c3", 6)
    for call_id in ("c0", "c1"):
        e.handle(ev.OfferAnswered(7, str(e.calls[call_id].offer_id)))  # both agents talk on
    out = e.handle(ev.TimePassed(35))
    assert [(a.call_id, a.position, a.estimated_wait_seconds) for a in of(out, cmd.AnnouncePosition)] == [
        ("c2", 1, 60.0)  # position 1 x 120 s / 2 agents
    ]
    out = e.handle(ev.TimePassed(36))
    assert [(a.call_id, a.position, a.estimated_wait_seconds) for a in of(out, cmd.AnnouncePosition)] == [
        ("c3", 2, 120.0)
    ]
    assert e.next_deadline() == 65


def test_wait_estimate_follows_measured_handle_times() -> None:
    e = engine(QueueConfig(Q, handle_time_estimate=100))
    ready(e, "a", 0)
    arrive(e, "c1", 0)
    serve(e, "c1", 0, 20)
    assert e.handle_time[Q] == pytest.approx(100 + (20 - 100) / 8)
    assert e.estimated_wait(Q, 2) == pytest.approx(2 * e.handle_time[Q])
    e.handle(ev.AgentUnavailable(30, "a"))
    assert e.estimated_wait(Q, 1) is None


# -- reload -----------------------------------------------------------------------------------------


def test_reload_applies_new_settings_to_waiting_calls_without_dropping_them() -> None:
    e = engine(QueueConfig(Q), QueueConfig("old"))
    arrive(e, "c1", 0)
    arrive(e, "c2", 1, queue="old")
    new = (QueueConfig(Q, max_wait=50, overflow=VOICEMAIL, skill="tax"),)
    out = e.handle(ev.QueuesReconfigured(10, new))
    assert not of(out, cmd.CallAbandoned) and set(e.calls) == {"c1", "c2"}
    assert set(e.queues) == {Q}
    assert e.queue_config("old") == QueueConfig("old")  # kept for its waiting call
    assert rings(ready(e, "plain", 11, frozenset({Q, "old"}))) == [("c2", "plain")]  # no tax skill for c1
    assert rings(ready(e, "taxman", 12, skills={"tax": 2})) == [("c1", "taxman")]


def test_reload_with_a_shorter_max_wait_overflows_calls_already_past_it() -> None:
    e = engine()
    arrive(e, "c1", 0)
    out = e.handle(ev.QueuesReconfigured(100, (QueueConfig(Q, max_wait=60, overflow=VOICEMAIL),)))
    assert [s.call_id for s in of(out, cmd.SendCallTo)] == ["c1"]


def test_reload_changes_the_strategy_of_ready_agents() -> None:
    e = engine()
    ready(e, "late", 10, order=1)
    ready(e, "early", 0, order=2)
    e.handle(ev.QueuesReconfigured(20, (QueueConfig(Q, strategy=Strategy.TOP_DOWN),)))
    assert rings(arrive(e, "c1", 21)) == [("c1", "late")]


def test_a_removed_queue_is_forgotten_once_its_calls_are_gone() -> None:
    e = engine(QueueConfig(Q), QueueConfig("old", wrap_up=30))
    arrive(e, "c1", 0, queue="old")
    e.handle(ev.QueuesReconfigured(1, (QueueConfig(Q),)))
    assert e.queue_config("old").wrap_up == 30
    e.handle(ev.CallerHungUp(2, "c1"))
    e.handle(ev.QueuesReconfigured(3, (QueueConfig(Q),)))
    assert set(e.queues) == {Q}
    arrive(e, "c2", 4, queue="old")  # a call for an unknown queue is still served, with defaults
    assert e.queue_config("old").wrap_up == 0


def test_center_reload_gives_ready_agents_new_queues_and_waits_for_wrap_up_to_end() -> None:
    c = ContactCenter([QueueConfig(Q, wrap_up=30)])
    for agent in ("ready", "wrapping"):
        c.log_in(agent, f"ep-{agent}", 0, Cause.AGENT, agent)
        c.make_ready(agent, 0, Cause.AGENT, agent)
    c.handle(ev.CallArrived(1, "c1", Q, "555", "PJSIP/c1"))
    offer = str(c.engine.calls["c1"].offer_id)
    wrapping = c.engine.offers[offer].agent_id
    c.handle(ev.OfferAnswered(2, offer))
    c.handle(ev.AgentLegEnded(10, offer))
    assert c.presence.get(wrapping).state is AgentState.WRAP_UP
    c.reconfigure([QueueConfig(Q, wrap_up=30), QueueConfig("new")], 11)
    assert c.presence.get(wrapping).state is AgentState.WRAP_UP  # not cut short by the reload
    out = c.handle(ev.CallArrived(12, "c2", "new", "555", "PJSIP/c2"))
    other = ({"ready", "wrapping"} - {wrapping}).pop()
    assert [r.agent_id for r in out if isinstance(r, cmd.RingAgent)] == [other]
    c.handle(ev.TimePassed(40))  # wrap-up over: the agent now serves "new" too
    assert c.engine.agents[wrapping].queues == frozenset({Q, "new"})


def test_center_passes_on_overflow_when_the_last_agent_goes_busy() -> None:
    voicemail = Destination(DestinationKind.VOICEMAIL, "1")
    c = ContactCenter([QueueConfig(Q, overflow=voicemail, when_no_agents=NoAgents.OVERFLOW)])
    c.log_in("a", "ep", 0, Cause.AGENT, "a")
    c.make_ready("a", 0, Cause.AGENT, "a")
    c.handle(ev.CallArrived(1, "c1", Q, "555", "PJSIP/c1"))
    c.handle(ev.CallArrived(2, "c2", Q, "555", "PJSIP/c2"))
    c.handle(ev.OfferAnswered(3, str(c.engine.calls["c1"].offer_id)))
    out = c.make_busy("a", "lunch", 4, Cause.AGENT, "a")  # pending; stops new offers at once
    assert [s.call_id for s in out if isinstance(s, cmd.SendCallTo)] == ["c2"]
    assert "c2" not in c.engine.calls and c.engine.calls["c1"].state is CallState.CONNECTED
