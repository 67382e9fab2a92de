"""The rebuild after a restart or takeover: legs another run originated are taken over (core only)."""

from __future__ import annotations

from acd import commands as cmd
from acd import events as ev
from acd.center import ContactCenter
from acd.engine import CallState, QueueConfig
from agents.presence import AgentState, Cause

Q = "general"
A = Cause.AGENT
OLD_LEG = "acd-0badf00d-o7"


def ready_center(*agents: tuple[str, str]) -> ContactCenter:
    c = ContactCenter([QueueConfig(Q, ring_timeout=15)])
    for agent_id, endpoint in agents:
        c.log_in(agent_id, endpoint, 0, A, "restore")
        c.make_ready(agent_id, 0, A, "restore")
    return c


def live(call_id: str, *, waiting: bool) -> ev.LiveCall:
    return ev.LiveCall(call_id, Q, "13800000001", f"PJSIP/citizens-{call_id}", 0, 90.0, waiting)


def of(out: list, kind: type) -> list:
    return [o for o in out if isinstance(o, kind)]


def test_a_bridged_call_found_at_rebuild_is_resumed_and_its_agent_is_on_call() -> None:
    c = ready_center(("1001", "agent1"), ("1002", "agent2"))
    leg = ev.LiveLeg(OLD_LEG, "c1", "agent1", "1001", answered=True, answered_at=95.0)
    out = c.handle(ev.Resynced(100, (live("c1", waiting=False), live("c2", waiting=True)),
                               frozenset({"c1", "c2", OLD_LEG}), (leg,)))  # fmt: skip
    [resumed] = of(out, cmd.CallResumed)
    assert (resumed.call_id, resumed.agent_id, resumed.answered_at, resumed.enqueued_at) == (
        "c1",
        "1001",
        95,
        90,
    )
    assert c.presence.get("1001").state is AgentState.ON_CALL
    # the waiting caller goes to the free agent, never to the one on a call
    assert [(r.call_id, r.agent_id) for r in of(out, cmd.RingAgent)] == [("c2", "1002")]
    assert c.engine.calls["c1"].state is CallState.CONNECTED
    # the end is followed: the agent's leg hangs up -> the call is finished once, the agent is free
    out = c.handle(ev.AgentLegEnded(160, OLD_LEG))
    [finished] = of(out, cmd.CallFinished)
    assert (finished.call_id, finished.agent_id, finished.answered_at, finished.at) == ("c1", "1001", 95, 160)
    assert c.presence.get("1001").state is AgentState.READY
    assert of(c.handle(ev.CallerHungUp(161, "c1")), cmd.CallFinished) == []


def test_a_resumed_call_ended_by_the_caller_is_finished() -> None:
    c = ready_center(("1001", "agent1"))
    leg = ev.LiveLeg(OLD_LEG, "c1", "agent1", "1001", answered=True)
    out = c.handle(ev.Resynced(100, (live("c1", waiting=False),), frozenset({"c1", OLD_LEG}), (leg,)))
    assert of(out, cmd.CallResumed)[0].answered_at == 100  # no answer time recorded: the rebuild's
    [finished] = of(c.handle(ev.CallerHungUp(130, "c1")), cmd.CallFinished)
    assert finished.at == 130


def test_a_ringing_leg_found_at_rebuild_is_cancelled_before_its_caller_is_offered_again() -> None:
    c = ready_center(("1001", "agent1"), ("1002", "agent2"))
    leg = ev.LiveLeg(OLD_LEG, "c1", "agent1", "1001", answered=False)
    out = c.handle(ev.Resynced(100, (live("c1", waiting=True),), frozenset({"c1", OLD_LEG}), (leg,)))
    assert [h.offer_id for h in of(out, cmd.HangUpOffer)] == [OLD_LEG]
    assert of(out, cmd.RingAgent) == []  # not rung at a second agent while the first still rings
    assert of(out, cmd.CallQueued)[0].enqueued_at == 90
    assert c.presence.get("1001").state is AgentState.RINGING
    out = c.handle(ev.AgentLegGone(100.2, OLD_LEG))
    [ring] = of(out, cmd.RingAgent)
    assert ring.call_id == "c1"
    assert c.presence.get("1001").state is (
        AgentState.RINGING if ring.agent_id == "1001" else AgentState.READY
    )
    assert of(out, cmd.AgentMissedOffer) == []  # cancelled by us: not the agent's fault


def test_a_cancelled_leg_whose_hangup_is_never_reported_releases_its_caller_after_a_timeout() -> None:
    c = ready_center(("1002", "agent2"))
    leg = ev.LiveLeg(OLD_LEG, "c1", "agent9", "phone:agent9", answered=False)  # nobody logged in there
    out = c.handle(ev.Resynced(100, (live("c1", waiting=True),), frozenset({"c1", OLD_LEG}), (leg,)))
    assert of(out, cmd.RingAgent) == []
    deadline = c.next_deadline()
    assert deadline is not None and deadline <= 106
    out = c.handle(ev.TimePassed(deadline))
    assert [r.agent_id for r in of(out, cmd.RingAgent)] == ["1002"]


def test_a_leg_whose_caller_is_gone_is_hung_up_and_its_agent_waits_for_it() -> None:
    c = ready_center(("1001", "agent1"))
    leg = ev.LiveLeg(OLD_LEG, "gone", "agent1", "1001", answered=False)
    out = c.handle(ev.Resynced(100, (live("c2", waiting=True),), frozenset({"c2", OLD_LEG}), (leg,)))
    assert [h.offer_id for h in of(out, cmd.HangUpOffer)] == [OLD_LEG]
    assert of(out, cmd.RingAgent) == []  # no new INVITE across the old leg's CANCEL
    out = c.handle(ev.AgentLegGone(100.3, OLD_LEG))
    assert [(r.call_id, r.agent_id) for r in of(out, cmd.RingAgent)] == [("c2", "1001")]


def test_the_caller_leaving_while_its_found_leg_is_cancelled_is_abandoned_once() -> None:
    c = ready_center(("1001", "agent1"))
    leg = ev.LiveLeg(OLD_LEG, "c1", "agent1", "1001", answered=False)
    c.handle(ev.Resynced(100, (live("c1", waiting=True),), frozenset({"c1", OLD_LEG}), (leg,)))
    out = c.handle(ev.CallerHungUp(101, "c1"))
    assert len(of(out, cmd.CallAbandoned)) == 1
    assert of(c.handle(ev.AgentLegGone(101.1, OLD_LEG)), cmd.CallAbandoned) == []
    assert "c1" not in c.engine.calls and OLD_LEG not in c.engine.offers


def test_a_known_leg_is_left_alone() -> None:
    c = ready_center(("1001", "agent1"))
    [ring] = of(c.handle(ev.CallArrived(90, "c1", Q, "1380", "PJSIP/citizens-c1")), cmd.RingAgent)
    leg = ev.LiveLeg(ring.offer_id, "c1", "agent1", "1001", answered=False)
    out = c.handle(ev.Resynced(100, (live("c1", waiting=True),), frozenset({"c1", ring.offer_id}), (leg,)))
    assert of(out, cmd.HangUpOffer) == [] and of(out, cmd.CallQueued) == []
    assert c.engine.calls["c1"].offer_id == ring.offer_id
