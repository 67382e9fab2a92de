"""Agent profiles in the core: queues, skills and order reach distribution at once, and nothing
that is in progress (a waiting call, a ringing offer, a wrap-up) is dropped or cut short."""

from __future__ import annotations

import pytest

from acd import commands as cmd
from acd import events as ev
from acd.center import ContactCenter
from acd.engine import QueueConfig
from acd.queues_config import Strategy
from acd.views import AgentProfile, ProfileError
from agents.presence import AgentState, Cause

A = Cause.AGENT


def rings(out: list) -> list[cmd.RingAgent]:
    return [c for c in out if isinstance(c, cmd.RingAgent)]


def arrive(c: ContactCenter, call_id: str, queue: str, at: float) -> list:
    return c.handle(ev.CallArrived(at, call_id, queue, "13800000000", f"PJSIP/citizens-{call_id}"))


def ready(c: ContactCenter, agent_id: str, at: float) -> list:
    c.log_in(agent_id, f"agent{agent_id}", at, A, agent_id)
    return c.make_ready(agent_id, at, A, agent_id)


def skill_center() -> ContactCenter:
    return ContactCenter([QueueConfig("general"), QueueConfig("tibetan", skill="tibetan")])


def test_a_skill_queue_admits_nobody_without_a_profile_and_the_skilled_agent_with_one() -> None:
    c = skill_center()
    ready(c, "1001", 0)  # idle longest, no skill
    ready(c, "1002", 1)
    assert rings(arrive(c, "c1", "tibetan", 2)) == []
    out = c.set_profiles([AgentProfile("1002", "卓玛", skills={"tibetan": 4})], 3)
    [ring] = rings(out)  # applied at once: the waiting call goes to the skilled agent
    assert (ring.call_id, ring.agent_id) == ("c1", "1002")


def test_queues_of_a_profile_limit_what_the_agent_serves() -> None:
    c = ContactCenter([QueueConfig("general"), QueueConfig("complaints")])
    c.set_profiles([AgentProfile("1001", queues=frozenset({"complaints"}))], 0)
    ready(c, "1001", 0)
    assert rings(arrive(c, "c1", "general", 1)) == []
    assert [r.agent_id for r in rings(arrive(c, "c2", "complaints", 2))] == ["1001"]


def test_order_decides_top_down() -> None:
    c = ContactCenter([QueueConfig("general", strategy=Strategy.TOP_DOWN)])
    c.set_profiles([AgentProfile("1001", order=2), AgentProfile("1002", order=1)], 0)
    ready(c, "1001", 0)
    ready(c, "1002", 0)
    assert [r.agent_id for r in rings(arrive(c, "c1", "general", 1))] == ["1002"]


def test_a_profile_change_keeps_the_ringing_offer_and_the_waiting_calls() -> None:
    c = skill_center()
    ready(c, "1001", 0)
    [ring] = rings(arrive(c, "c1", "general", 1))
    arrive(c, "c2", "general", 2)
    out = c.set_profiles([AgentProfile("1001", queues=frozenset({"tibetan"}), skills={"tibetan": 5})], 3)
    assert not [o for o in out if isinstance(o, cmd.HangUpOffer | cmd.CallAbandoned)]
    assert c.agent("1001").state is AgentState.RINGING
    c.handle(ev.OfferAnswered(4, ring.offer_id))
    assert c.agent("1001").state is AgentState.ON_CALL
    snap = c.snapshot(5)
    assert [call.call_id for call in snap.queue("general").calls] == ["c2"]  # still waiting
    out = c.handle(ev.AgentLegEnded(6, ring.offer_id))
    assert rings(out) == []  # the agent now serves tibetan only: c2 is not offered to it
    assert [r.agent_id for r in rings(arrive(c, "c3", "tibetan", 7))] == ["1001"]


def test_a_profile_change_in_wrap_up_does_not_end_it() -> None:
    c = ContactCenter([QueueConfig("general", wrap_up=10)])
    ready(c, "1001", 0)
    [ring] = rings(arrive(c, "c1", "general", 1))
    c.handle(ev.OfferAnswered(2, ring.offer_id))
    c.handle(ev.AgentLegEnded(5, ring.offer_id))
    assert c.agent("1001").state is AgentState.WRAP_UP
    c.set_profiles([AgentProfile("1001", "李四", skills={"mandarin": 3})], 6)
    assert c.agent("1001").state is AgentState.WRAP_UP
    c.handle(ev.TimePassed(15))
    assert c.agent("1001").state is AgentState.READY
    assert c.engine.agents["1001"].skills == {"mandarin": 3}  # applied when the wrap-up ended


def test_replace_drops_profiles_not_given() -> None:
    c = skill_center()
    c.set_profiles([AgentProfile("1001", skills={"tibetan": 3})], 0)
    ready(c, "1001", 0)
    c.set_profiles([AgentProfile("1002")], 1, replace=True)
    assert c.profile("1001") == AgentProfile("1001")
    assert rings(arrive(c, "c1", "tibetan", 2)) == []


def test_snapshot_names_agents_and_lists_calls_in_service_order() -> None:
    c = skill_center()
    c.set_profiles([AgentProfile("1001", "张三")], 0)
    c.log_in("1001", "agent1", 0, A, "zs")
    arrive(c, "c1", "general", 1)
    c.handle(ev.CallArrived(2, "c2", "general", "139", "PJSIP/x", priority=5))
    snap = c.snapshot(3)
    [agent] = snap.agents
    expected = ("1001", "张三", AgentState.LOGGED_IN, "agent1")
    assert (agent.agent_id, agent.name, agent.state, agent.endpoint) == expected
    assert [q.name for q in snap.queues] == ["general", "tibetan"]
    assert [call.call_id for call in snap.queue("general").calls] == ["c2", "c1"]
    assert snap.queue("general").oldest_wait(3) == 2
    assert c.agent("9999").state is AgentState.LOGGED_OUT
    assert c.agent_at("agent1") == "1001"


@pytest.mark.parametrize(
    "kwargs",
    [{"skills": {"x": 0}}, {"skills": {"x": 6}}, {"skills": {"x": 2.5}}, {"agent_id": ""}, {"order": "a"}],
)
def test_invalid_profiles_are_refused(kwargs: dict) -> None:
    with pytest.raises(ProfileError):
        AgentProfile(**{"agent_id": "1001", **kwargs})
