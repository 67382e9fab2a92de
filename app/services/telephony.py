"""Translation between Asterisk's AMI messages and the routing core's events.

Pure functions: no I/O, so they are tested with recorded messages.
"""

from __future__ import annotations

from collections.abc import Mapping

from acd import events as ev

# Why an agent's phone did not take an offer: the one table. Asterisk's OriginateResponse alone does
# not tell: its Reason is the last control frame seen on the leg, 0 for a refused call as for an
# unregistered phone. The agent leg's Hangup cause (Q.850) does. Measured on Asterisk 22 with sipp
# phones (tests/e2e/test_offer_failures.py):
#
#   the phone                          OriginateResponse Reason   leg Hangup Cause
#   486 Busy Here                      0                          17 user busy
#   603 Decline                        0                          21 call rejected
#   480 Temporarily Unavailable        0                          19 no answer
#   rings until the Originate timeout  3                          19 no answer
#   not registered                     0                          (no channel, no Hangup)
#   the service hung the leg up        0                          16 normal clearing
_FAILURE_BY_CAUSE = {
    "17": ev.OfferFailure.BUSY,
    "21": ev.OfferFailure.REJECTED,
    "18": ev.OfferFailure.NO_ANSWER,  # no user responding
    "19": ev.OfferFailure.NO_ANSWER,
    "1": ev.OfferFailure.UNREACHABLE,  # unallocated number (404)
    "3": ev.OfferFailure.UNREACHABLE,  # no route to destination
    "20": ev.OfferFailure.UNREACHABLE,  # subscriber absent
    "27": ev.OfferFailure.UNREACHABLE,  # destination out of order
    "38": ev.OfferFailure.UNREACHABLE,  # network out of order
}
# When the leg's cause says nothing of the phone (no leg at all, or 16: hung up by us or Asterisk).
_FAILURE_BY_REASON = {
    "0": ev.OfferFailure.UNREACHABLE,  # no leg could be created: the phone is not registered
    "1": ev.OfferFailure.NO_ANSWER,  # hung up before answering
    "3": ev.OfferFailure.NO_ANSWER,  # rang until the timeout
    "5": ev.OfferFailure.BUSY,
    "8": ev.OfferFailure.REJECTED,  # congestion
}

WAITING_EVENT = "AcdCallWaiting"


def offer_failure(reason_code: int | str | None, hangup_cause: int | str | None = None) -> ev.OfferFailure:
    """Why an offer failed, from the OriginateResponse ``Reason`` and the agent leg's Hangup ``Cause``
    (``None``: no leg was created, or its Hangup is not known)."""
    by_cause = _FAILURE_BY_CAUSE.get(str(hangup_cause).strip()) if hangup_cause is not None else None
    return by_cause or _FAILURE_BY_REASON.get(str(reason_code).strip(), ev.OfferFailure.ERROR)


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _float(value: str | None) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def _duration(value: str | None) -> float:
    """``CoreShowChannel``'s ``Duration`` is ``HH:MM:SS``."""
    seconds = 0.0
    for part in str(value or "").split(":"):
        seconds = seconds * 60 + (_float(part) or 0.0)
    return seconds


def call_arrived(msg: Mapping[str, str], at: float, default_queue: str) -> ev.CallArrived | None:
    """The dialplan's ``UserEvent(AcdCallWaiting, ...)``: a caller starts waiting for an agent.

    The enqueue time is the dialplan's (``Enqueued``, epoch seconds with milliseconds), so a call
    keeps the same enqueue time when a restarted service finds it again in Asterisk.
    """
    uniqueid, channel = msg.get("Uniqueid"), msg.get("Channel")
    if not uniqueid or not channel:
        return None
    return ev.CallArrived(
        at=at,
        call_id=uniqueid,
        queue=(msg.get("Queue") or default_queue).strip(),
        caller_number=(msg.get("CallerIDNum") or "").strip(),
        channel=channel,
        priority=_int(msg.get("CallPriority"), 0),  # "Priority" is the dialplan step
        enqueued_at=_float(msg.get("Enqueued")),
    )


def endpoint_of(channel: str) -> str:
    """The endpoint of a channel name: ``PJSIP/agent5-0000001a`` -> ``agent5``."""
    _, _, rest = channel.partition("/")
    return rest.rsplit("-", 1)[0] if "-" in rest else rest


def live_call(
    channel: Mapping[str, str], variables: Mapping[str, str], waiting: bool, default_queue: str, now: float
) -> ev.LiveCall:
    """A caller's channel from ``CoreShowChannels`` plus its ``ACD_*`` variables."""
    enqueued = _float(variables.get("ACD_ENQUEUED"))
    return ev.LiveCall(
        call_id=channel["Uniqueid"],
        queue=(variables.get("ACD_QUEUE") or default_queue).strip(),
        caller_number=(channel.get("CallerIDNum") or "").strip(),
        channel=channel["Channel"],
        priority=_int(variables.get("ACD_PRIORITY"), 0),
        enqueued_at=enqueued if enqueued is not None else now - _duration(channel.get("Duration")),
        waiting=waiting,
    )
