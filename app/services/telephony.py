"""Translation between Asterisk's AMI messages and the routing core's events.

Pure functions: no I/O, so they are tested with recorded messages.
"""

from __future__ import annotations

from collections.abc import Mapping

from acd import events as ev

# Asterisk's OriginateResponse "Reason" codes (enum ast_control_frame_type / dial results).
_ORIGINATE_REASONS = {
    "0": ev.OfferFailure.UNREACHABLE,  # no channel could be created (endpoint unregistered)
    "1": ev.OfferFailure.NO_ANSWER,  # hung up before answering
    "3": ev.OfferFailure.NO_ANSWER,  # ring timeout
    "5": ev.OfferFailure.BUSY,
    "8": ev.OfferFailure.REJECTED,  # congestion: declined or failed
}

WAITING_EVENT = "AcdCallWaiting"


def offer_failure(reason_code: int | str | None) -> ev.OfferFailure:
    return _ORIGINATE_REASONS.get(str(reason_code), ev.OfferFailure.ERROR)


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
