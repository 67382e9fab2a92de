"""Events fed into the routing core.

Every event carries ``at``: the time it happened, in seconds on the caller's clock (the AMI shell uses
wall-clock epoch seconds, the simulator its own). The core never reads a clock itself, so the same
events always give the same commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from acd.queues_config import QueueConfig


class OfferFailure(StrEnum):
    """Why an agent's phone did not take an offered call."""

    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CallArrived:
    """A citizen's call entered a queue and waits for an agent."""

    at: float
    call_id: str
    queue: str
    caller_number: str
    channel: str
    priority: int = 0
    enqueued_at: float | None = None  # original enqueue time when a call is picked up again after a restart


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller's channel is gone (before, during or after the conversation)."""

    at: float
    call_id: str
    cause: str = ""


@dataclass(frozen=True, slots=True)
class AgentAvailable:
    """The agent is logged in and ready: it may be offered calls of these queues.

    ``skills`` maps a skill to the agent's level in it (1-5, 5 best); ``order`` places the agent for
    the top-down and round-robin strategies (lower first).
    """

    at: float
    agent_id: str
    endpoint: str
    queues: frozenset[str]
    skills: Mapping[str, int] = field(default_factory=dict)
    order: int = 0


@dataclass(frozen=True, slots=True)
class AgentUnavailable:
    """The agent no longer wants new calls (busy, logged out, not ready). A call in progress goes on."""

    at: float
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    """The agent answered the offered call: Asterisk bridges the two."""

    at: float
    offer_id: str


@dataclass(frozen=True, slots=True)
class OfferFailed:
    """The agent's phone did not take the offered call.

    The shell reports it once Asterisk has reported the agent leg's end (its Hangup, or no channel
    was ever created): the hangup cause is what tells busy from no answer, and the agent may be
    offered a new call at once.
    """

    at: float
    offer_id: str
    reason: OfferFailure


@dataclass(frozen=True, slots=True)
class AgentLegEnded:
    """The agent's side of an answered call hung up (the conversation is over for the agent)."""

    at: float
    offer_id: str


@dataclass(frozen=True, slots=True)
class AgentLegGone:
    """Asterisk reported the Hangup of an offer's agent leg (answered or not, for any reason).

    An agent whose offer the core withdrew (the caller left while the phone rang, the offer timed
    out) or whose answered call the caller ended is offered no new call until its old leg is gone:
    a new INVITE must not cross the CANCEL or BYE of the old one on the phone.
    """

    at: float
    offer_id: str


@dataclass(frozen=True, slots=True)
class TimePassed:
    """Wakes the core at a deadline it asked for (see ``Engine.next_deadline``)."""

    at: float


@dataclass(frozen=True, slots=True)
class LiveCall:
    """A caller's channel as Asterisk reports it after a (re)connect."""

    call_id: str
    queue: str
    caller_number: str
    channel: str
    priority: int
    enqueued_at: float
    waiting: bool  # still in the hotline's waiting application (not bridged to anyone)


@dataclass(frozen=True, slots=True)
class LiveLeg:
    """An agent leg found in Asterisk at a rebuild that the core has no offer for.

    Another run of the service (a crashed process, the previous leader) originated it; it carries
    the ACD variables (``ACD_CALL_ID``) that name its caller. ``leg_id`` (its Asterisk uniqueid) is
    the offer id the core knows it by from now on. ``answered``: it is bridged with its caller.
    ``agent_id`` is the agent the shell found for it (logged in at ``endpoint``, or the one the
    database recorded); ``answered_at`` the answer time the database recorded, if any.
    """

    leg_id: str
    call_id: str
    endpoint: str
    agent_id: str
    answered: bool
    answered_at: float | None = None


@dataclass(frozen=True, slots=True)
class Resynced:
    """The complete picture read from Asterisk after the AMI link (re)connected.

    ``calls`` lists every caller channel still in the hotline; ``live_channels`` every channel id that
    exists at all (agents' legs included). Anything the core believed that Asterisk contradicts is
    corrected: calls that vanished are ended, waiting calls the core never saw are queued with their
    original enqueue time, offers whose agent leg vanished are taken back.

    ``legs`` are agent legs the core did not originate (see ``LiveLeg``): a bridged one is a call in
    progress, which the core takes over (``CallResumed``: it gets its end and its ticket, its agent
    is on a call); a ringing one is cancelled, and its caller is offered to nobody until that leg is
    gone, so that no caller rings at two agents at once.
    """

    at: float
    calls: tuple[LiveCall, ...]
    live_channels: frozenset[str] = field(default_factory=frozenset)
    legs: tuple[LiveLeg, ...] = ()


@dataclass(frozen=True, slots=True)
class QueuesReconfigured:
    """The queue definitions were reloaded: apply them without dropping any call (see ``Engine``)."""

    at: float
    queues: tuple[QueueConfig, ...]


Event = (
    CallArrived
    | CallerHungUp
    | AgentAvailable
    | AgentUnavailable
    | OfferAnswered
    | OfferFailed
    | AgentLegEnded
    | AgentLegGone
    | TimePassed
    | Resynced
    | QueuesReconfigured
)
