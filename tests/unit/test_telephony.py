"""Translating AMI messages into core events."""

from __future__ import annotations

import pytest

from acd import events as ev
from app.services import telephony


def test_waiting_user_event_becomes_call_arrived() -> None:
    msg = {
        "Event": "UserEvent",
        "UserEvent": "AcdCallWaiting",
        "Channel": "PJSIP/citizens-00000001",
        "Uniqueid": "1732700000.12",
        "CallerIDNum": "13800138000",
        "Queue": "general",
        "Priority": "7",
        "CallPriority": "2",
    }
    arrived = telephony.call_arrived(msg, 100.0, "general")
    assert arrived == ev.CallArrived(
        100.0, "1732700000.12", "general", "13800138000", "PJSIP/citizens-00000001", 2
    )


def test_malformed_waiting_event_is_refused_and_bad_priority_defaults() -> None:
    assert telephony.call_arrived({"Event": "UserEvent", "Queue": "general"}, 1.0, "general") is None
    msg = {"Uniqueid": "1.1", "Channel": "PJSIP/x", "CallPriority": "urgent!"}
    arrived = telephony.call_arrived(msg, 1.0, "general")
    assert arrived is not None and arrived.priority == 0 and arrived.queue == "general"


def test_live_call_uses_the_dialplan_enqueue_time_or_the_channel_age() -> None:
    channel = {"Uniqueid": "1.1", "Channel": "PJSIP/x", "CallerIDNum": "555", "Duration": "00:01:05"}
    with_var = telephony.live_call(
        channel, {"ACD_ENQUEUED": "1000", "ACD_QUEUE": "water"}, True, "general", 2000.0
    )
    assert (with_var.enqueued_at, with_var.queue) == (1000.0, "water")
    without = telephony.live_call(channel, {}, True, "general", 2000.0)
    assert without.enqueued_at == 2000.0 - 65


def test_originate_reason_codes() -> None:
    assert telephony.offer_failure(3) is ev.OfferFailure.NO_ANSWER
    assert telephony.offer_failure("5") is ev.OfferFailure.BUSY
    assert telephony.offer_failure(None) is ev.OfferFailure.ERROR


@pytest.mark.parametrize(
    ("reason", "cause", "failure"),
    [
        ("0", "17", ev.OfferFailure.BUSY),  # 486 Busy Here: not "unreachable"
        ("0", "21", ev.OfferFailure.REJECTED),  # 603 Decline
        ("0", "19", ev.OfferFailure.NO_ANSWER),  # 480
        ("3", "19", ev.OfferFailure.NO_ANSWER),  # rang out
        ("0", None, ev.OfferFailure.UNREACHABLE),  # not registered: no leg at all
        ("0", "16", ev.OfferFailure.UNREACHABLE),  # the cause says nothing of the phone
    ],
)
def test_the_leg_hangup_cause_decides(reason: str, cause: str | None, failure: ev.OfferFailure) -> None:
    assert telephony.offer_failure(reason, cause) is failure
