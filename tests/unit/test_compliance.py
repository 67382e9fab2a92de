"""The incident rules, each with an injected clock: presence transitions and phone facts in, incidents out."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.busy_reasons import DEFAULT_CONFIG, BusyConfig, ConfigError, Rules, parse_config
from agents.compliance import (
    LEFT_POST,
    Authority,
    ComplianceTracker,
    IncidentClosed,
    IncidentKind,
    IncidentOpened,
    Output,
    TakeOutOfService,
)
from agents.presence import AgentState, Cause, Presence, Transition
from agents.report import state_totals

K = IncidentKind
MIN = 60.0

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


class Desk:
    """Presence and the tracker wired as the service wires them, under a clock the test moves."""

    def __init__(self, config: BusyConfig = CONFIG) -> None:
        self.presence = Presence()
        ids = itertools.count(1)
        self.tracker = ComplianceTracker(config, new_id=lambda: f"i{next(ids)}")
        self.now = 0.0
        self.out: list[Output] = []

    def at(self, t: float) -> Desk:
        """Move the clock to ``t``, firing every deadline before it, as the service's timer does."""
        while (deadline := self.tracker.next_deadline()) is not None and deadline < t:
            self.now = max(self.now, deadline)
            self._take(self.tracker.tick(self.now))
        self.now = t
        return self

    def _feed(self, transitions: list[Transition]) -> None:
        for t in transitions:
            self._take(self.tracker.transition(t, self.presence.get(t.agent_id).endpoint))

    def _take(self, out: list[Output]) -> None:
        self.out += out
        for o in out:
            if isinstance(o, TakeOutOfService):  # the service sets the agent not ready
                self._feed(self.presence.not_ready(o.agent_id, LEFT_POST, o.at, Cause.SYSTEM, "system"))

    def login(self, agent: str = "1001", endpoint: str = "agent1") -> Desk:
        self._feed(self.presence.log_in(agent, endpoint, self.now, Cause.AGENT, "alice"))
        return self

    def ready(self, agent: str = "1001") -> Desk:
        self._feed(self.presence.make_ready(agent, self.now, Cause.AGENT, "alice"))
        return self

    def busy(self, reason: str, agent: str = "1001", cause: Cause = Cause.AGENT) -> Desk:
        self._feed(self.presence.make_busy(agent, reason, self.now, cause, "alice"))
        return self

    def logout(self, agent: str = "1001") -> Desk:
        self._feed(self.presence.log_out(agent, self.now, Cause.AGENT, "alice"))
        return self

    def activity(self, state: AgentState, agent: str = "1001") -> Desk:
        self._feed(self.presence.activity(agent, state, self.now))
        return self

    def device(self, state: str, endpoint: str = "agent1") -> Desk:
        self._take(self.tracker.device_state(endpoint, state, self.now))
        return self

    def contact(self, registered: bool, endpoint: str = "agent1") -> Desk:
        self._take(self.tracker.contact_status(endpoint, registered, self.now))
        return self

    def approve(self, reason: str, agent: str = "1001") -> Desk:
        self._take(self.tracker.approve(agent, reason, self.now))
        return self

    def opened(self) -> list[tuple[IncidentKind, str, float]]:
        return [(o.kind, o.reason, o.started_at) for o in self.out if isinstance(o, IncidentOpened)]

    def closed(self) -> list[tuple[IncidentKind, float, float]]:
        return [(o.kind, o.started_at, o.ended_at) for o in self.out if isinstance(o, IncidentClosed)]


# -- busy beyond the reason's limit ---------------------------------------------------------------


def test_busy_within_the_limit_is_no_incident() -> None:
    d = Desk().login().ready().at(100).busy("break").at(100 + 15 * MIN).ready()
    assert d.opened() == [] and d.closed() == []


def test_busy_over_the_limit_opens_at_the_limit_and_closes_with_the_overrun() -> None:
    d = Desk().login().ready().at(100).busy("break")
    d.at(100 + 15 * MIN - 1)
    assert d.opened() == []
    assert d.tracker.next_deadline() == 100 + 15 * MIN
    d.at(100 + 15 * MIN + 1)
    assert d.opened() == [(K.BUSY_OVER_LIMIT, "break", 100 + 15 * MIN)]
    [opened] = [o for o in d.out if isinstance(o, IncidentOpened)]
    assert opened.detected_at == 100 + 15 * MIN  # noticed at the deadline, not later
    d.at(100 + 22 * MIN).ready()
    [closed] = [o for o in d.out if isinstance(o, IncidentClosed)]
    assert (closed.kind, closed.duration) == (K.BUSY_OVER_LIMIT, 7 * MIN)
    assert closed.incident_id == opened.incident_id


def test_changing_the_busy_reason_ends_the_incident_and_starts_a_new_count() -> None:
    d = Desk().login().at(0).busy("toilet").at(11 * MIN).busy("break")
    assert d.closed() == [(K.BUSY_OVER_LIMIT, 10 * MIN, 11 * MIN)]
    d.at(11 * MIN + 15 * MIN + 30)
    assert d.opened()[-1] == (K.BUSY_OVER_LIMIT, "break", 26 * MIN)


def test_busy_forced_by_a_supervisor_or_the_system_breaks_no_rule() -> None:
    d = Desk().login().at(0).busy("toilet", cause=Cause.SUPERVISOR).at(3 * 3600)
    d.busy("meal", cause=Cause.SYSTEM).at(6 * 3600)
    assert d.opened() == []
    assert d.tracker.status("1001", d.now).authority is Authority.FORCED


def test_busy_with_an_unconfigured_reason_has_no_limit() -> None:
    d = Desk().login().at(0).busy("no_answer_limit").at(8 * 3600)
    assert d.opened() == []


def test_logging_out_while_over_the_limit_closes_the_incident() -> None:
    d = Desk().login().at(0).busy("toilet").at(30 * MIN).logout()
    assert d.closed() == [(K.BUSY_OVER_LIMIT, 10 * MIN, 30 * MIN)]


def test_busy_requested_during_a_call_counts_from_when_it_took_effect() -> None:
    d = Desk().login().ready().activity(AgentState.RINGING).activity(AgentState.ON_CALL)
    d.at(50).busy("toilet")  # pending: the agent is on a call
    d.at(300).activity(AgentState.READY)  # the call's work is done: busy now
    assert d.presence.get("1001").state is AgentState.BUSY
    d.at(300 + 10 * MIN + 1)
    assert d.opened() == [(K.BUSY_OVER_LIMIT, "toilet", 300 + 10 * MIN)]


# -- approval --------------------------------------------------------------------------------------


def test_busy_needing_approval_without_it_is_an_incident_from_its_start() -> None:
    d = Desk().login().ready().at(60).busy("training")
    assert d.opened() == [(K.BUSY_UNAPPROVED, "training", 60)]
    d.at(600).ready()
    assert d.closed() == [(K.BUSY_UNAPPROVED, 60, 600)]


def test_approval_given_late_ends_the_unapproved_incident() -> None:
    d = Desk().login().at(0).busy("training").at(120).approve("training")
    assert d.closed() == [(K.BUSY_UNAPPROVED, 0, 120)]
    assert d.tracker.status("1001", 120).authority is Authority.APPROVED
    d.at(5 * 3600)
    assert len(d.opened()) == 1  # nothing more: training has no time limit


def test_approval_first_then_the_busy_is_authorized_once() -> None:
    d = Desk().login().ready().at(10).approve("meal")
    d.busy("meal", cause=Cause.SUPERVISOR)  # the service applies the approved request
    assert d.opened() == []
    assert d.tracker.status("1001", 10).authority is Authority.APPROVED
    d.at(30 * MIN).ready().at(31 * MIN).busy("meal")  # the approval was used up
    assert d.opened() == [(K.BUSY_UNAPPROVED, "meal", 31 * MIN)]


def test_an_approved_busy_still_has_its_time_limit() -> None:
    d = Desk().login().at(0).approve("meal").busy("meal", cause=Cause.SUPERVISOR).at(50 * MIN)
    assert d.opened() == [(K.BUSY_OVER_LIMIT, "meal", 45 * MIN)]


def test_a_restored_unapproved_busy_continues_its_open_incident() -> None:
    """After a restart the system puts the agent back into the busy: it is still unapproved."""
    before = Desk().login().at(60).busy("training")
    [left_open] = [o for o in before.out if isinstance(o, IncidentOpened)]
    d = Desk()
    d.tracker.carry_over(left_open)
    d.at(500)
    d._feed(d.presence.log_in("1001", "agent1", d.now, Cause.SYSTEM, "restore"))
    d._feed(d.presence.make_busy("1001", "training", d.now, Cause.SYSTEM, "restore"))
    assert d.tracker.not_carried() == []
    assert d.opened() == []  # the same incident goes on: same id, same start
    assert d.tracker.status("1001", 500).open_incidents == (left_open,)
    assert d.tracker.status("1001", 500).authority is Authority.AGENT
    d.at(900).approve("training")
    [closed] = [o for o in d.out if isinstance(o, IncidentClosed)]
    assert (closed.incident_id, closed.started_at, closed.ended_at) == (left_open.incident_id, 60, 900)


def test_a_carried_over_incident_the_restore_did_not_continue_is_handed_back() -> None:
    before = Desk().login().at(60).busy("training")
    [left_open] = [o for o in before.out if isinstance(o, IncidentOpened)]
    d = Desk()
    d.tracker.carry_over(left_open)
    d._feed(d.presence.log_in("1001", "agent1", d.now, Cause.SYSTEM, "restore"))
    d._feed(d.presence.make_busy("1001", "break", d.now, Cause.SYSTEM, "restore"))
    assert d.tracker.not_carried() == [left_open]
    assert d.tracker.status("1001", d.now).open_incidents == ()


def test_approvals_are_dropped_at_logout() -> None:
    d = Desk().login().approve("meal").logout().at(10).login().busy("meal")
    assert d.opened() == [(K.BUSY_UNAPPROVED, "meal", 10)]


# -- per-shift allowance ---------------------------------------------------------------------------


def test_busy_over_the_shift_allowance_opens_when_the_total_crosses_it() -> None:
    d = Desk().login().ready()
    for start in (0, 3600, 7200):  # three 14-minute breaks: each within its 15-minute limit
        d.at(start).busy("break").at(start + 14 * MIN).ready()
    # 42 minutes of break against an allowance of 40: the third break crossed it after 12 minutes
    assert d.opened() == [(K.BUSY_OVER_SHIFT_ALLOWANCE, "break", 7200 + 12 * MIN)]
    assert d.closed() == [(K.BUSY_OVER_SHIFT_ALLOWANCE, 7200 + 12 * MIN, 7200 + 14 * MIN)]
    d.at(9000).busy("break")  # allowance used up: a whole new break is over it
    assert d.opened()[-1] == (K.BUSY_OVER_SHIFT_ALLOWANCE, "break", 9000)


def test_a_short_log_out_does_not_reset_the_allowance_but_a_new_shift_does() -> None:
    d = Desk().login().at(0).busy("break").at(14 * MIN).logout()
    d.at(20 * MIN).login().busy("break").at(20 * MIN + 14 * MIN).logout()
    d.at(40 * MIN).login().busy("break")  # 28 min used: 12 left
    d.at(40 * MIN + 13 * MIN)
    assert d.opened() == [(K.BUSY_OVER_SHIFT_ALLOWANCE, "break", 52 * MIN)]
    d.logout().at(53 * MIN + 2 * 3600 + 1).login().busy("break").at(53 * MIN + 2 * 3600 + 14 * MIN)
    assert len(d.opened()) == 1  # a gap over shift_gap_hours started a new shift


def test_occurrence_and_shift_limits_are_separate_incidents() -> None:
    d = Desk().login().at(0).busy("break").at(50 * MIN)
    assert sorted(d.opened()) == [
        (K.BUSY_OVER_LIMIT, "break", 15 * MIN),
        (K.BUSY_OVER_SHIFT_ALLOWANCE, "break", 40 * MIN),
    ]


# -- the phone: left the post ---------------------------------------------------------------------


def test_phone_unregistered_while_logged_in_is_left_post_after_the_grace() -> None:
    d = Desk().device("NOT_INUSE").login().ready()
    d.at(100).contact(False)
    d.at(129)
    assert d.opened() == [] and d.presence.get("1001").state is AgentState.READY
    d.at(131)
    assert d.opened() == [(K.LEFT_POST, "unregistered", 100)]
    agent = d.presence.get("1001")
    assert (agent.state, agent.reason) == (AgentState.NOT_READY, LEFT_POST)
    assert [o for o in d.out if isinstance(o, TakeOutOfService)] == [TakeOutOfService("1001", 130)]
    d.at(400).contact(True)  # back: the incident ends; the agent says ready itself
    assert d.closed() == [(K.LEFT_POST, 100, 400)]
    assert d.presence.get("1001").state is AgentState.NOT_READY


def test_phone_back_within_the_grace_is_nothing() -> None:
    d = Desk().login().ready().at(10).device("UNAVAILABLE").at(30).device("NOT_INUSE").at(500)
    assert d.opened() == [] and d.presence.get("1001").state is AgentState.READY


def test_logging_in_without_a_registered_phone_counts_from_the_login() -> None:
    d = Desk().contact(False).at(1000).login().at(1000 + 31)
    assert d.opened() == [(K.LEFT_POST, "unregistered", 1000)]
    d.at(1100).logout()
    assert d.closed() == [(K.LEFT_POST, 1000, 1100)]


def test_a_busy_agent_whose_phone_goes_away_also_left_the_post() -> None:
    d = Desk().login().at(0).busy("break").at(60).device("UNAVAILABLE").at(100)
    assert d.opened() == [(K.LEFT_POST, "unregistered", 60)]
    assert d.presence.get("1001").state is AgentState.NOT_READY


def test_an_unknown_phone_is_not_punished() -> None:
    d = Desk().login().ready().at(3600)
    assert d.opened() == []


def test_another_endpoints_phone_does_not_matter() -> None:
    d = Desk().login().ready().at(10).device("UNAVAILABLE", endpoint="agent2").at(500)
    assert d.opened() == []


# -- the phone: busy while ready -------------------------------------------------------------------


def test_a_personal_call_while_ready_is_an_incident_after_the_grace() -> None:
    d = Desk().device("NOT_INUSE").login().ready().at(50).device("INUSE").at(54)
    assert d.opened() == []
    d.at(56)
    assert d.opened() == [(K.PHONE_BUSY_WHILE_READY, "INUSE", 50)]
    d.at(200).device("NOT_INUSE")
    assert d.closed() == [(K.PHONE_BUSY_WHILE_READY, 50, 200)]


def test_the_acd_call_itself_is_no_personal_call() -> None:
    d = Desk().device("NOT_INUSE").login().ready()
    d.at(10).activity(AgentState.RINGING).device("RINGING").at(12).activity(AgentState.ON_CALL)
    d.device("INUSE").at(200).activity(AgentState.READY)  # call over; the device follows a moment later
    d.at(201).device("NOT_INUSE").at(400)
    assert d.opened() == []


def test_becoming_ready_during_a_personal_call_counts_from_ready() -> None:
    d = Desk().login().at(10).device("INUSE").at(100).ready().at(110)
    assert d.opened() == [(K.PHONE_BUSY_WHILE_READY, "INUSE", 100)]
    d.at(150).busy("break")  # no longer ready: this incident ends (the busy rules take over)
    assert d.closed() == [(K.PHONE_BUSY_WHILE_READY, 100, 150)]


def test_dnd_shows_as_busy_device_and_counts() -> None:
    d = Desk().login().ready().at(10).device("BUSY").at(20)
    assert d.opened() == [(K.PHONE_BUSY_WHILE_READY, "BUSY", 10)]


# -- bookkeeping -----------------------------------------------------------------------------------


def test_status_shows_the_limit_and_how_far_over() -> None:
    d = Desk().login().at(0).busy("break").at(20 * MIN)
    status = d.tracker.status("1001", d.now)
    assert (status.limit_seconds, status.over_limit_seconds) == (15 * MIN, 5 * MIN)
    assert [o.kind for o in status.open_incidents] == [K.BUSY_OVER_LIMIT]


def test_agents_are_tracked_separately() -> None:
    d = Desk().login("1001", "agent1").login("1002", "agent2").at(0).busy("toilet", "1001")
    d.busy("break", "1002").at(12 * MIN)
    assert [(o.agent_id, o.kind) for o in d.out if isinstance(o, IncidentOpened)] == [
        ("1001", K.BUSY_OVER_LIMIT)
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["login", "ready", "busy", "logout", "ring", "answer", "idle", "dev", "contact"]),
            st.sampled_from(["break", "toilet", "meal", "training", "", "INUSE", "NOT_INUSE", "UNAVAILABLE"]),
            st.floats(min_value=0, max_value=1200),
        ),
        max_size=40,
    )
)
def test_every_incident_opens_once_closes_once_and_never_runs_backwards(steps: list) -> None:
    d = Desk()
    for action, arg, dt in steps:
        d.at(d.now + dt)
        try:
            match action:
                case "login":
                    d.login()
                case "ready":
                    d.ready()
                case "busy":
                    d.busy(arg)
                case "logout":
                    d.logout()
                case "ring":
                    d.activity(AgentState.RINGING)
                case "answer":
                    d.activity(AgentState.ON_CALL)
                case "idle":
                    d.activity(AgentState.READY)
                case "dev":
                    d.device(arg)
                case "contact":
                    d.contact(arg != "UNAVAILABLE")
        except Exception as exc:  # presence refuses some requests (ready while logged out)
            assert type(exc).__name__ == "PresenceError"
    d.at(d.now + 10_000).activity(AgentState.READY).logout()  # any call's work ends, then log out
    opened = {o.incident_id: o for o in d.out if isinstance(o, IncidentOpened)}
    closed = [o for o in d.out if isinstance(o, IncidentClosed)]
    assert len({c.incident_id for c in closed}) == len(closed)
    for c in closed:
        assert c.incident_id in opened and c.started_at == opened[c.incident_id].started_at
        assert c.ended_at >= c.started_at
    # a logged-out agent has nothing open
    assert list(d.tracker.open_incidents()) == []


# -- configuration ---------------------------------------------------------------------------------


def test_default_config_matches_the_example_file() -> None:
    import tomllib
    from pathlib import Path

    example = Path(__file__).parents[2] / "busy_reasons.example.toml"
    assert parse_config(tomllib.loads(example.read_text())).reasons == DEFAULT_CONFIG.reasons


def test_config_check_refuses_missing_or_unknown_reasons_unless_allowed() -> None:
    assert CONFIG.check("break") is None
    assert "required" in (CONFIG.check("") or "")
    assert "unknown" in (CONFIG.check("nap") or "")
    assert parse_config({"allow_no_reason": True}).check("") is None
    assert CONFIG.by_code("3").key == "meal"  # type: ignore[union-attr]
    assert CONFIG.rules == Rules(left_post_grace=30, personal_call_grace=5, shift_gap=7200)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reasons": {"break": {"limit_minutes": -1}}}, "reasons.break.limit_minutes"),
        ({"reasons": {"break": {"limit_minutes": True}}}, "reasons.break.limit_minutes"),
        ({"reasons": {"Break": {}}}, "reasons.Break"),
        ({"reasons": {"a": {"code": 1}, "b": {"code": "1"}}}, "already used by a"),
        ({"reasons": {"a": {"code": "x1"}}}, "reasons.a.code"),
        ({"reasons": {"a": {"limit": 3}}}, "unknown keys"),
        ({"reasons": {"a": {"needs_approval": "yes"}}}, "reasons.a.needs_approval"),
        ({"rules": {"left_post_grace_seconds": -1}}, "rules.left_post_grace_seconds"),
        ({"reason": {}}, "unknown top-level"),
    ],
)
def test_config_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


# -- daily totals ----------------------------------------------------------------------------------


def T(at: float, frm: AgentState, to: AgentState, reason: str = "") -> Transition:
    return Transition("1001", at, frm, to, reason, Cause.AGENT, "alice")


def test_state_totals_clip_to_the_window_and_split_busy_by_reason() -> None:
    S = AgentState
    transitions = [
        T(50, S.LOGGED_OUT, S.LOGGED_IN),  # before the window: the state at its start
        T(100, S.LOGGED_IN, S.READY),
        T(200, S.READY, S.ON_CALL),
        T(260, S.ON_CALL, S.WRAP_UP),
        T(290, S.WRAP_UP, S.BUSY, "break"),
        T(400, S.BUSY, S.BUSY, "toilet"),
        T(450, S.BUSY, S.NOT_READY, "missed_call"),
        T(500, S.NOT_READY, S.LOGGED_OUT),
        T(900, S.LOGGED_OUT, S.LOGGED_IN),
    ]
    totals = state_totals(transitions, start=80, end=1000)
    assert totals.by_state[S.LOGGED_IN] == 20 + 100
    assert (totals.by_state[S.READY], totals.by_state[S.ON_CALL], totals.by_state[S.WRAP_UP]) == (100, 60, 30)
    assert totals.busy_by_reason == {"break": 110, "toilet": 50}
    assert totals.not_ready_by_reason == {"missed_call": 50}
    assert totals.logged_in == 500 - 80 + 100
    assert totals.logins == 1  # the one at 50 was before the window
