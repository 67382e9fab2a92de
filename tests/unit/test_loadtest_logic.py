"""The load test's own logic, on recorded-style AMI events: what it rebuilds, what its checks catch.

The real proof is tests/e2e/test_loadtest.py on the real Asterisk; these pin down each check's rule,
and that each one can fail.
"""

from __future__ import annotations

from datetime import UTC, datetime

from loadtest import invariants as inv
from loadtest.observe import Observation, dispatch_latencies
from loadtest.plan import Profile, citizen_calls, phone_calls
from loadtest.runner import _parse_metrics
from loadtest.sipp import PhoneAction

CALLER = "13900000001"


def ev(kind: str, at: float, uid: str, channel: str, **fields: str) -> dict[str, str]:
    return {"Event": kind, "Timestamp": f"{at:.6f}", "Uniqueid": uid, "Channel": channel, **fields}


def answered_call() -> list[dict[str, str]]:
    """A caller waits at t=10; agent1's leg at 10.005 is busy (486); agent2's leg at 10.010 is bridged."""
    trunk = "PJSIP/citizens-trunk-00000001"
    return [
        ev("UserEvent", 10.0, "c1", trunk, UserEvent="AcdCallWaiting", CallerIDNum=CALLER),
        ev("Newchannel", 10.005, "l1", "PJSIP/agent1-00000002", CallerIDNum=CALLER),
        ev("Hangup", 10.020, "l1", "PJSIP/agent1-00000002", Cause="17", CallerIDNum=CALLER),
        ev("Newchannel", 10.030, "l2", "PJSIP/agent2-00000003", CallerIDNum=CALLER),
        ev("BridgeEnter", 12.0, "l2", "PJSIP/agent2-00000003", BridgeUniqueid="b1"),
        ev("BridgeEnter", 12.0, "c1", trunk, BridgeUniqueid="b1"),
        ev("Hangup", 20.0, "l2", "PJSIP/agent2-00000003", Cause="16"),
        ev("Hangup", 20.0, "c1", trunk, Cause="16"),
    ]


def observe(events: list[dict[str, str]]) -> Observation:
    obs = Observation({CALLER}, {"agent1", "agent2"})
    for event in events:
        obs.feed(event)
    return obs


def row(outcome: str, agent: str | None, tickets: int) -> inv.CallRow:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    return inv.CallRow("c1", CALLER, outcome, agent, t, t, t, tickets)


def test_a_clean_call_passes_every_call_check() -> None:
    obs = observe(answered_call())
    caller = obs.callers["c1"]
    assert caller.bridged_endpoint == "agent2" and caller.ended_at == 20.0
    assert [leg.cause for leg in obs.legs.values()] == [17, 16]
    rows = {"c1": row("answered", "A2", 1)}
    endpoints = {"A1": "agent1", "A2": "agent2"}
    assert inv.one_final_outcome(obs, rows).passed
    assert inv.answered_iff_bridged(obs, rows, endpoints).passed
    assert inv.one_ticket_per_answered(rows).passed
    assert inv.no_caller_offered_twice(obs).passed
    assert inv.no_offer_over_live_leg(obs).passed


def test_call_checks_fail_on_wrong_records() -> None:
    obs = observe(answered_call())
    endpoints = {"A1": "agent1", "A2": "agent2"}
    assert not inv.one_final_outcome(obs, {}).passed
    assert not inv.one_final_outcome(obs, {"c1": row("waiting", None, 0)}).passed
    assert not inv.answered_iff_bridged(obs, {"c1": row("abandoned", None, 0)}, endpoints).passed
    wrong_agent = inv.answered_iff_bridged(obs, {"c1": row("answered", "A1", 1)}, endpoints)
    assert not wrong_agent.passed and "recorded agent A1" in wrong_agent.examples[0]
    assert not inv.one_ticket_per_answered({"c1": row("answered", "A2", 2)}).passed
    assert not inv.one_ticket_per_answered({"c1": row("abandoned", None, 1)}).passed


def test_overlapping_legs_are_caught_per_caller_and_per_phone() -> None:
    events = answered_call()
    # agent2's leg starts 0.07 ms before agent1's leg is gone: the caller is offered twice at once.
    events[3] = ev("Newchannel", 10.01993, "l2", "PJSIP/agent2-00000003", CallerIDNum=CALLER)
    check = inv.no_caller_offered_twice(observe(events))
    assert not check.passed and "0.07 ms" in check.examples[0]
    # A phone offered a new call before its previous leg's Hangup.
    other = "13900000002"
    obs = Observation({CALLER, other}, {"agent1"})
    for event in [
        ev("Newchannel", 1.0, "l1", "PJSIP/agent1-1", CallerIDNum=CALLER),
        ev("Newchannel", 2.0, "l2", "PJSIP/agent1-2", CallerIDNum=other),
        ev("Hangup", 2.003, "l1", "PJSIP/agent1-1", Cause="19"),
    ]:
        obs.feed(event)
    check = inv.no_offer_over_live_leg(obs)
    assert not check.passed and "3.00 ms" in check.examples[0]


def test_a_busy_phone_must_not_make_its_agent_not_ready() -> None:
    obs = observe(answered_call())
    endpoints = {"A1": "agent1", "A2": "agent2"}
    missed = [inv.Transition("A1", 10.021, "not_ready", "missed_call")]
    check = inv.busy_is_not_missed(obs, missed, endpoints)
    assert not check.passed and check.checked == 1
    after_answer = [inv.Transition("A2", 30.0, "not_ready", "missed_call")]
    assert inv.busy_is_not_missed(obs, after_answer, endpoints).passed


def test_end_metrics_and_log_checks() -> None:
    assert inv.nothing_waiting(0, 0, []).passed
    assert not inv.nothing_waiting(1, 0, []).passed
    assert not inv.nothing_waiting(0, 0, ["PJSIP/citizens-trunk-1"]).passed
    assert inv.metrics_match_database({"answered": 3.0}, {"answered": 3}).passed
    assert not inv.metrics_match_database({"answered": 2.0}, {"answered": 3}).passed
    assert inv.clean_log(['{"level": "info", "event": "ok"}']).passed
    assert not inv.clean_log(['{"level": "error", "event": "boom"}']).passed
    assert not inv.clean_log(["Traceback (most recent call last):"]).passed


def test_dispatch_latency_counts_from_the_later_of_caller_waiting_and_phone_free() -> None:
    obs = observe(answered_call())
    # l1: caller waiting since 10.0, agent1 free long before: 5 ms. l2: the caller waits again
    # from l1's end (10.020), agent2 free since 10.025 (made ready): 5 ms.
    latencies = dispatch_latencies(obs, {"agent2": [10.025]}, {17: 10.0})
    assert [round(x * 1000, 3) for x in latencies] == [5.0, 5.0]


def test_waiting_series_counts_callers_until_bridged() -> None:
    assert observe(answered_call()).waiting_series() == [(10.0, 1), (12.0, 0)]


def test_plan_is_reproducible_and_phones_differ() -> None:
    profile = Profile(agents=3, calls_per_second=2, duration=100, busy_share=0.1, no_answer_share=0.1)
    calls = citizen_calls(profile, "1390")
    assert calls == citizen_calls(profile, "1390")
    assert 150 < len(calls) < 250 and all(0 < c.at < 100 for c in calls)
    assert len({c.number for c in calls}) == len(calls)
    first, second = phone_calls(profile, 1), phone_calls(profile, 2)
    assert first != second
    share = sum(c.action == PhoneAction.BUSY for c in first) / len(first)
    assert 0.07 < share < 0.13
    assert all(c.ring_ms >= 10**9 for c in first if c.action == PhoneAction.NO_ANSWER)


def test_metrics_parsing_sums_the_queue_counters() -> None:
    text = (
        "# HELP hotline_calls_answered_total x\n"
        'hotline_calls_answered_total{queue="general"} 7.0\n'
        'hotline_calls_answered_total{queue="other"} 2.0\n'
        'hotline_tickets_opened_total{queue="general"} 7.0\n'
    )
    parsed = _parse_metrics(text, "general")
    assert parsed["answered"] == 7.0 and parsed["tickets_opened"] == 7.0 and parsed["offered"] == 0.0


def test_loadtest_command_line_builds_the_profile() -> None:
    from app.cli import build_parser
    from loadtest.main import options_from

    args = build_parser().parse_args(
        ["loadtest", "--agents", "7", "--rate", "1.5", "--busy", "0.1", "--ring", "2", "5", "--out", "/tmp/x"]
    )
    options = options_from(args)
    assert options.profile.agents == 7 and options.profile.calls_per_second == 1.5
    assert (options.profile.ring_min, options.profile.ring_max, options.profile.busy_share) == (2, 5, 0.1)
    assert options.service_url is None and options.app_queue_seconds == 60
