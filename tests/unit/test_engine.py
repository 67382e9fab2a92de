"""The routing core, driven by events with an explicit clock."""

from __future__ import annotations

from acd import commands as cmd
from acd import events as ev
from acd.engine import LEG_GONE_TIMEOUT, Engine, QueueConfig

Q = "general"


def engine(**config: float) -> Engine:
    return Engine({Q: QueueConfig(Q, **config)})


def arrive(e: Engine, call_id: str, at: float, priority: int = 0, queue: str = Q) -> list[cmd.Command]:
    channel = f"PJSIP/citizens-{call_id}"
    return e.handle(ev.CallArrived(at, call_id, queue, f"1380000{call_id}", channel, priority))


def ready(e: Engine, agent_id: str, at: float, queues: frozenset[str] = frozenset({Q})) -> list[cmd.Command]:
    return e.handle(ev.AgentAvailable(at, agent_id, f"agent{agent_id}", queues))


def rings(out: list[cmd.Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.agent_id) for c in out if isinstance(c, cmd.RingAgent)]


def of(out: list[cmd.Command], kind: type) -> list:
    return [c for c in out if isinstance(c, kind)]


def test_waiting_call_rings_the_agent_who_becomes_ready_showing_the_caller() -> None:
    e = engine(ring_timeout=12)
    assert rings(arrive(e, "c1", 0)) == []
    out = ready(e, "a1", 5)
    [ring] = of(out, cmd.RingAgent)
    assert (ring.call_id, ring.agent_id, ring.endpoint) == ("c1", "a1", "agenta1")
    assert ring.caller_number == "1380000c1" and ring.caller_channel == "PJSIP/citizens-c1"
    assert ring.timeout == 12


def test_longest_idle_agent_gets_the_next_call() -> None:
    e = engine()
    ready(e, "a1", 10)
    ready(e, "a2", 3)
    ready(e, "a3", 7)
    assert rings(arrive(e, "c1", 20)) == [("c1", "a2")]
    assert rings(arrive(e, "c2", 21)) == [("c2", "a3")]
    assert rings(arrive(e, "c3", 22)) == [("c3", "a1")]


def test_calls_are_served_first_in_first_out() -> None:
    e = engine()
    for i, t in enumerate([1.0, 2.0, 3.0]):
        arrive(e, f"c{i}", t)
    assert rings(ready(e, "a1", 4)) == [("c0", "a1")]
    offer = of(e.handle(ev.TimePassed(4)), cmd.RingAgent)
    assert offer == []
    assert [c.call_id for c in e.waiting_calls()] == ["c0", "c1", "c2"]


def test_missed_offer_keeps_the_call_first_and_sets_the_agent_not_ready() -> None:
    e = engine()
    arrive(e, "c1", 0)
    arrive(e, "c2", 1)
    [ring] = of(ready(e, "a1", 2), cmd.RingAgent)
    out = e.handle(ev.OfferFailed(17, ring.offer_id, ev.OfferFailure.NO_ANSWER))
    missed = [(m.agent_id, m.reason) for m in of(out, cmd.AgentMissedOffer)]
    assert missed == [("a1", ev.OfferFailure.NO_ANSWER)]
    assert rings(out) == []  # a1 is out of distribution now
    assert rings(ready(e, "a2", 18)) == [("c1", "a2")]  # c1 is still first in line


def test_answer_then_hangup_reports_answer_and_finish_and_frees_the_agent() -> None:
    e = engine()
    arrive(e, "c1", 0)
    [ring] = of(ready(e, "a1", 1), cmd.RingAgent)
    out = e.handle(ev.OfferAnswered(4, ring.offer_id))
    [answered] = of(out, cmd.CallAnswered)
    assert (answered.agent_id, answered.enqueued_at, answered.answered_at) == ("a1", 0, 4)
    out = e.handle(ev.CallerHungUp(60, "c1"))
    [finished] = of(out, cmd.CallFinished)
    assert (finished.agent_id, finished.answered_at, finished.at) == ("a1", 4, 60)
    assert rings(arrive(e, "c2", 60.001)) == []  # the agent's leg is still up (Bridge ending)
    assert rings(e.handle(ev.AgentLegGone(60.002, ring.offer_id))) == [("c2", "a1")]


def test_caller_hanging_up_while_waiting_is_abandoned() -> None:
    e = engine()
    arrive(e, "c1", 0)
    out = e.handle(ev.CallerHungUp(9, "c1", "16"))
    [abandoned] = of(out, cmd.CallAbandoned)
    assert (abandoned.enqueued_at, abandoned.at) == (0, 9)
    assert e.waiting_calls() == []


def test_caller_hanging_up_while_agent_rings_cancels_the_offer_without_penalty() -> None:
    e = engine()
    arrive(e, "c1", 0)
    [ring] = of(ready(e, "a1", 1), cmd.RingAgent)
    out = e.handle(ev.CallerHungUp(3, "c1"))
    assert [h.offer_id for h in of(out, cmd.HangUpOffer)] == [ring.offer_id]
    assert of(out, cmd.CallAbandoned) and not of(out, cmd.AgentMissedOffer)
    # the late failure of the cancelled leg changes nothing; the agent is still ready
    e.handle(ev.OfferFailed(4, ring.offer_id, ev.OfferFailure.NO_ANSWER))
    assert rings(arrive(e, "c2", 5)) == []  # but not offered while its cancelled leg may still ring
    assert rings(e.handle(ev.AgentLegGone(5.1, ring.offer_id))) == [("c2", "a1")]


def test_no_new_offer_crosses_the_cancel_of_the_withdrawn_one() -> None:
    """A phone was offered a new call 0.07-3.3 ms before Asterisk reported the previous leg's Hangup."""
    e = engine()
    arrive(e, "c1", 0)
    arrive(e, "c2", 0.5)
    [ring] = of(ready(e, "a1", 1), cmd.RingAgent)
    out = e.handle(ev.CallerHungUp(3, "c1"))
    assert of(out, cmd.HangUpOffer) and rings(out) == []  # c2 waits for a1's old leg to go
    assert rings(ready(e, "a2", 3.001)) == [("c2", "a2")]  # another agent is not held up
    arrive(e, "c3", 3.002)
    assert rings(e.handle(ev.AgentLegGone(3.003, "o999"))) == []  # someone else's leg: no change
    assert rings(e.handle(ev.AgentLegGone(3.004, ring.offer_id))) == [("c3", "a1")]


def test_a_leg_whose_hangup_is_never_reported_stops_blocking_after_a_timeout() -> None:
    e = engine()
    arrive(e, "c1", 0)
    arrive(e, "c2", 0)
    ready(e, "a1", 1)
    e.handle(ev.CallerHungUp(3, "c1"))
    assert e.next_deadline() == 3 + LEG_GONE_TIMEOUT
    assert rings(e.handle(ev.TimePassed(3 + LEG_GONE_TIMEOUT))) == [("c2", "a1")]


def test_a_resync_without_the_leg_releases_the_agent() -> None:
    e = engine()
    arrive(e, "c1", 0)
    arrive(e, "c2", 0)
    [ring] = of(ready(e, "a1", 1), cmd.RingAgent)
    e.handle(ev.CallerHungUp(3, "c1"))
    live = ev.LiveCall("c2", "general", "555", "PJSIP/c-c2", 0, 0, True)
    assert rings(e.handle(ev.Resynced(4, (live,), frozenset({"c2", ring.offer_id})))) == []
    assert rings(e.handle(ev.Resynced(5, (live,), frozenset({"c2"})))) == [("c2", "a1")]


def test_wrap_up_delays_the_next_offer_until_its_deadline() -> None:
    e = engine(wrap_up=30)
    arrive(e, "c1", 0)
    [ring] = of(ready(e, "a1", 0), cmd.RingAgent)
    e.handle(ev.OfferAnswered(2, ring.offer_id))
    e.handle(ev.AgentLegEnded(50, ring.offer_id))
    assert rings(arrive(e, "c2", 51)) == []
    assert e.next_deadline() == 80
    assert rings(e.handle(ev.TimePassed(80))) == [("c2", "a1")]


def test_an_offer_whose_result_never_comes_is_taken_back() -> None:
    e = engine(ring_timeout=10)
    arrive(e, "c1", 0)
    [ring] = of(ready(e, "a1", 0), cmd.RingAgent)
    deadline = e.next_deadline()
    assert deadline is not None and deadline > 10
    out = e.handle(ev.TimePassed(deadline))
    assert [h.offer_id for h in of(out, cmd.HangUpOffer)] == [ring.offer_id]
    assert [c.call_id for c in e.waiting_calls()] == ["c1"]  # waiting again, not lost
    out = e.handle(ev.AgentLegGone(deadline + 0.1, ring.offer_id))
    assert [r.call_id for r in of(out, cmd.RingAgent)] == ["c1"]  # offered again once the leg is gone


def test_higher_priority_first_then_arrival_order() -> None:
    e = engine()
    arrive(e, "low", 0)
    arrive(e, "urgent", 5, priority=5)
    assert rings(ready(e, "a1", 6)) == [("urgent", "a1")]


def test_agent_serving_two_queues_takes_the_oldest_call_of_either() -> None:
    e = Engine({"a": QueueConfig("a"), "b": QueueConfig("b")})
    arrive(e, "b1", 1, queue="b")
    arrive(e, "a1", 2, queue="a")
    assert rings(ready(e, "x", 3, frozenset({"a", "b"}))) == [("b1", "x")]


def test_resync_picks_up_waiting_calls_with_their_original_enqueue_time_and_drops_vanished_ones() -> None:
    e = engine()
    arrive(e, "gone", 0)
    live = ev.LiveCall("new", Q, "555", "PJSIP/x", 0, enqueued_at=-40.0, waiting=True)
    out = e.handle(ev.Resynced(10, (live,), frozenset({"new"})))
    assert [a.call_id for a in of(out, cmd.CallAbandoned)] == ["gone"]
    assert [(q.call_id, q.enqueued_at) for q in of(out, cmd.CallQueued)] == [("new", -40.0)]


def test_resync_sees_an_offer_answered_while_the_link_was_down() -> None:
    e = engine()
    arrive(e, "c1", 0)
    [ring] = of(ready(e, "a1", 1), cmd.RingAgent)
    live = ev.LiveCall("c1", Q, "555", "PJSIP/x", 0, 0.0, waiting=False)
    out = e.handle(ev.Resynced(10, (live,), frozenset({"c1", ring.offer_id})))
    assert [a.agent_id for a in of(out, cmd.CallAnswered)] == ["a1"]


def test_the_same_call_reported_twice_is_queued_once() -> None:
    e = engine()
    arrive(e, "c1", 0)
    assert of(arrive(e, "c1", 1), cmd.CallQueued) == []
    assert len(e.waiting_calls()) == 1
