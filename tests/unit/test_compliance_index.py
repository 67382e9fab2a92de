"""The tracker evaluates only the agents a fact concerns, with exactly the results of a full scan."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.busy_reasons import BusyConfig, parse_config
from agents.compliance import ComplianceTracker, Output
from agents.presence import AgentState, Cause, Presence, PresenceError, Transition

CONFIG = parse_config(
    {
        "reasons": {
            "break": {"code": 1, "limit_minutes": 15, "shift_limit_minutes": 40},
            "toilet": {"code": 2, "limit_minutes": 10},
            "meal": {"code": 3, "limit_minutes": 45, "needs_approval": True},
            "training": {"code": 4, "needs_approval": True, "productive": True},
        },
        "rules": {"left_post_grace_seconds": 30, "personal_call_grace_seconds": 5, "shift_gap_hours": 2},
    }
)


def tracker(cls: type[ComplianceTracker], config: BusyConfig = CONFIG) -> ComplianceTracker:
    """A tracker numbering its incidents i1, i2... (so that two runs can be compared)."""
    ids = itertools.count(1)
    return cls(config, new_id=lambda: f"i{next(ids)}")


class ScanningTracker(ComplianceTracker):
    """The rules evaluated over every agent on every fact, as before the index: the reference."""

    def _advance(self, at: float, *, strict: bool = True) -> list[Output]:
        out: list[Output] = []
        for agent in self.agents.values():
            out += self._evaluate(agent, at, strict=strict)
        return out

    def _evaluate_endpoint(self, endpoint: str, at: float) -> list[Output]:
        out: list[Output] = []
        for agent in self.agents.values():
            if agent.endpoint == endpoint:
                out += self._evaluate(agent, at, strict=False)
        return out

    def next_deadline(self) -> float | None:
        dues = [
            due.due_at
            for agent in self.agents.values()
            for kind, due in self._conditions(agent).items()
            if due is not None and not (kind in agent.open and agent.open[kind].episode == due.episode)
        ]
        return min(dues, default=None)


class CountingTracker(ComplianceTracker):
    """Counts how many agents the rules were evaluated for."""

    evaluated = 0

    def _evaluate(self, agent, at, *, strict):  # type: ignore[no-untyped-def]
        self.evaluated += 1
        return super()._evaluate(agent, at, strict=strict)


AGENTS = ("a1", "a2", "a3", "a4")
PHONES = ("p1", "p2", "p3")
DEVICE_STATES = ("NOT_INUSE", "INUSE", "BUSY", "UNAVAILABLE", "RINGING", "UNKNOWN", "ONHOLD")

fact = st.one_of(
    st.tuples(st.just("log_in"), st.sampled_from(AGENTS), st.sampled_from(PHONES)),
    st.tuples(st.just("ready"), st.sampled_from(AGENTS)),
    st.tuples(
        st.just("busy"), st.sampled_from(AGENTS), st.sampled_from(("break", "toilet", "meal", "x", ""))
    ),
    st.tuples(st.just("forced_busy"), st.sampled_from(AGENTS), st.sampled_from(("break", "meal"))),
    st.tuples(st.just("log_out"), st.sampled_from(AGENTS)),
    st.tuples(st.just("activity"), st.sampled_from(AGENTS), st.sampled_from(("ringing", "on_call", "ready"))),
    st.tuples(st.just("approve"), st.sampled_from(AGENTS), st.sampled_from(("meal", "training"))),
    st.tuples(st.just("contact"), st.sampled_from((*PHONES, "stranger")), st.booleans()),
    st.tuples(st.just("device"), st.sampled_from((*PHONES, "stranger")), st.sampled_from(DEVICE_STATES)),
    st.tuples(st.just("status"), st.sampled_from((*AGENTS, "nobody"))),
)


def _run(tracker: ComplianceTracker, facts: list[tuple[float, bool, tuple]]) -> list[object]:  # type: ignore[type-arg]
    """Feed the facts as the service does (timer ticks at each deadline, or late: the loop was busy)."""
    presence = Presence()
    said: list[object] = []
    now = 0.0

    def feed(transitions: list[Transition]) -> None:
        for t in transitions:
            said.extend(tracker.transition(t, presence.get(t.agent_id).endpoint))

    for step, late, f in facts:
        target = now + step
        while not late and (deadline := tracker.next_deadline()) is not None and deadline < target:
            now = max(now, deadline)
            said.append(("deadline", deadline))
            said.extend(tracker.tick(now))
        now = target
        kind, *args = f
        try:
            if kind == "log_in":
                feed(presence.log_in(args[0], args[1], now, Cause.AGENT, "x"))
            elif kind == "ready":
                feed(presence.make_ready(args[0], now, Cause.AGENT, "x"))
            elif kind == "busy":
                feed(presence.make_busy(args[0], args[1], now, Cause.AGENT, "x"))
            elif kind == "forced_busy":
                feed(presence.make_busy(args[0], args[1], now, Cause.SUPERVISOR, "boss"))
            elif kind == "log_out":
                feed(presence.log_out(args[0], now, Cause.AGENT, "x"))
            elif kind == "activity":
                feed(presence.activity(args[0], AgentState(args[1]), now))
            elif kind == "approve":
                said.extend(tracker.approve(args[0], args[1], now))
            elif kind == "contact":
                said.extend(tracker.contact_status(args[0], args[1], now))
            elif kind == "device":
                said.extend(tracker.device_state(args[0], args[1], now))
            elif kind == "status":
                said.append(tracker.status(args[0], now))
        except PresenceError:
            said.append("refused")
    said.append(("deadline", tracker.next_deadline()))
    said.extend(tracker.tick(now + 10_000))
    return said


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from((0.0, 1.0, 4.0, 5.0, 29.0, 30.0, 61.0, 700.0, 3000.0)), st.booleans(), fact
        ),
        max_size=40,
    )
)
def test_the_indexed_tracker_says_exactly_what_a_full_scan_says(
    facts: list[tuple[float, bool, tuple]],
) -> None:  # type: ignore[type-arg]
    assert _run(tracker(ComplianceTracker), facts) == _run(tracker(ScanningTracker), facts)


def _center(n: int) -> tuple[CountingTracker, Presence]:
    ids = itertools.count(1)
    tracker = CountingTracker(CONFIG, new_id=lambda: f"i{next(ids)}")
    presence = Presence()
    for i in range(n):
        agent, phone = f"a{i}", f"p{i}"
        for t in presence.log_in(agent, phone, 0.0, Cause.AGENT, "x") + presence.make_ready(
            agent, 0.0, Cause.AGENT, "x"
        ):
            assert tracker.transition(t, phone) == []
        assert tracker.device_state(phone, "NOT_INUSE", 0.0) == []
    return tracker, presence


def test_an_event_for_a_device_of_no_agent_evaluates_no_agent() -> None:
    tracker, _ = _center(500)
    tracker.evaluated = 0
    assert tracker.device_state("trunk-7", "INUSE", 10.0) == []
    assert tracker.contact_status("trunk-7", False, 11.0) == []
    assert tracker.tick(12.0) == []
    assert tracker.next_deadline() is None
    assert tracker.evaluated == 0


def test_an_event_for_one_agents_phone_evaluates_that_agent_only() -> None:
    tracker, _ = _center(500)
    tracker.evaluated = 0
    assert tracker.device_state("p7", "INUSE", 10.0) == []  # personal call: due after the grace
    assert tracker.evaluated == 1
    assert tracker.next_deadline() == 15.0
    tracker.evaluated = 0
    opened = tracker.tick(15.0)
    assert [(o.agent_id, o.kind) for o in opened] == [("a7", "phone_busy_while_ready")]  # type: ignore[union-attr]
    assert tracker.evaluated == 1


def test_agents_due_in_one_late_tick_open_in_creation_order_as_a_scan_would() -> None:
    facts = [
        (0.0, False, ("log_in", "a1", "p1")),
        (0.0, False, ("busy", "a1", "meal")),  # unapproved at once, over its limit at 2700 s
        (1.0, False, ("log_in", "a2", "p2")),
        (0.0, False, ("busy", "a2", "toilet")),  # over its limit at 601 s
        (3000.0, True, ("status", "a1")),  # the timer was late: both come due in one tick
    ]
    assert _run(tracker(ComplianceTracker), facts) == _run(tracker(ScanningTracker), facts)
