"""What the routing core asks its shell to do, and the facts it reports.

Commands (``RingAgent``, ``HangUpOffer``, ``SendCallTo``, ``AnnouncePosition``) must be carried out
on the telephony side. Notifications (``Call*``, ``Agent*``) tell the shell what happened so it can
store tickets, update presence and export metrics;
they are derived from the same events, so every shell sees the same story.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from acd.events import OfferFailure
from acd.queues_config import Destination


class Activity(StrEnum):
    """What an agent is doing from the distribution's point of view."""

    IDLE = "idle"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


@dataclass(frozen=True, slots=True)
class RingAgent:
    """Ring the agent's phone for a waiting call; the caller keeps waiting meanwhile."""

    offer_id: str
    call_id: str
    agent_id: str
    endpoint: str
    caller_number: str
    caller_channel: str
    timeout: float


@dataclass(frozen=True, slots=True)
class HangUpOffer:
    """Hang up the agent's leg of an offer (the caller left, or the offer was taken back)."""

    offer_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class SendCallTo:
    """Take the caller out of waiting and send it to ``destination`` (voicemail, callback, message).

    The core has already forgotten the call: it will not be offered again. Overflow into another
    queue needs no telephony action and is reported by ``CallOverflowed`` alone.
    """

    call_id: str
    destination: Destination
    channel: str


@dataclass(frozen=True, slots=True)
class AnnouncePosition:
    """Tell the waiting caller its place in line and the estimated wait (``None``: no estimate).

    The estimate is position x average handle time / agents serving the queue (see ``Engine``).
    """

    call_id: str
    position: int
    estimated_wait_seconds: float | None
    channel: str = ""
    queue: str = ""


@dataclass(frozen=True, slots=True)
class CallQueued:
    call_id: str
    queue: str
    caller_number: str
    priority: int
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class CallOffered:
    call_id: str
    offer_id: str
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    queue: str
    caller_number: str
    agent_id: str
    enqueued_at: float
    answered_at: float


@dataclass(frozen=True, slots=True)
class CallAbandoned:
    """The caller hung up before any agent answered."""

    call_id: str
    queue: str
    enqueued_at: float
    at: float
    cause: str


@dataclass(frozen=True, slots=True)
class CallFinished:
    """An answered call is over."""

    call_id: str
    queue: str
    agent_id: str
    answered_at: float
    at: float


@dataclass(frozen=True, slots=True)
class AgentActivityChanged:
    agent_id: str
    activity: Activity
    at: float
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class AgentMissedOffer:
    """The agent's phone did not take an offer: the agent is no longer offered calls until ready again."""

    agent_id: str
    call_id: str
    reason: OfferFailure
    at: float


@dataclass(frozen=True, slots=True)
class CallTakenOver:
    """A waiting call was found connected by something else than the core (Asterisk's fallback
    queue, while the service was away). The core forgets it; the shell records who answered."""

    call_id: str
    queue: str
    caller_number: str
    enqueued_at: float
    at: float


@dataclass(frozen=True, slots=True)
class CallResumed:
    """A call in progress was found at a rebuild (its agent leg bridged with the caller): the core
    follows it from now on. The shell records it as answered (one ticket, created if the run that
    answered it could not) so that its end is recorded too."""

    call_id: str
    queue: str
    caller_number: str
    priority: int
    agent_id: str
    enqueued_at: float
    answered_at: float
    at: float


@dataclass(frozen=True, slots=True)
class CallOverflowed:
    """The call left its queue unanswered for ``destination``: ``reason`` is max_wait or no_agents."""

    call_id: str
    queue: str
    destination: Destination
    reason: str
    enqueued_at: float
    at: float


@dataclass(frozen=True, slots=True)
class AgentOfferDelayed:
    """The agent's phone was busy or rejected an offer: no new offer to it before ``until``."""

    agent_id: str
    call_id: str
    reason: OfferFailure
    until: float
    at: float


@dataclass(frozen=True, slots=True)
class AgentExhaustedNoAnswer:
    """The agent missed ``misses`` offers in a row (the queue's max-no-answer): set it busy, system reason."""

    agent_id: str
    misses: int
    at: float


Command = (
    RingAgent
    | HangUpOffer
    | CallQueued
    | CallOffered
    | CallAnswered
    | CallAbandoned
    | CallFinished
    | AgentActivityChanged
    | AgentMissedOffer
    | SendCallTo
    | AnnouncePosition
    | CallOverflowed
    | AgentOfferDelayed
    | AgentExhaustedNoAnswer
    | CallTakenOver
    | CallResumed
)
