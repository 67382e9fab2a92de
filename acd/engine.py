"""The routing core: waiting calls, agents' availability, offers. No I/O, no clock.

Feed it events (``acd.events``) with ``Engine.handle``; it returns the commands and notifications
(``acd.commands``) that follow. Ask ``next_deadline`` when to wake it with ``TimePassed``.

Rules:
- **Order of calls.** A call of priority ``p`` that entered at ``t`` is served as if it had entered at
  its *virtual time* ``t - p * priority_step``. So a higher priority goes first, equal priorities go
  first in, first out, and a waiting call ages: after waiting ``priority_step`` seconds it is ahead of
  every call one priority point above it that arrives later, so no call starves. The order never
  changes while calls wait, so it is a plain heap key. An agent serving several queues takes the
  call with the earliest virtual time among their heads.
- **Choice of agent.** Among the ready agents of the call's queue, by the queue's strategy: longest
  idle (default), fewest answered calls, least talk time, round robin (the agent this queue offered a
  call least recently, then by order), random (uniform, from the injected RNG), top-down (lowest
  ``order`` first).
- **Skills and tiers.** A queue with a skill admits agents by level (5 best). A call's *effective
  wait* is ``now`` minus its virtual time (so priority also widens sooner); the queue's tiers say
  which minimum level that wait admits. The best admitted level is always tried first.
- **Ring-no-answer.** A failed offer puts the call back at its place (it keeps its key). No answer
  or an unreachable phone takes the agent out of distribution (``AgentMissedOffer``); after the
  queue's ``max_no_answer`` unanswered offers in a row ``AgentExhaustedNoAnswer`` asks the center to
  set it busy. A busy or rejecting phone only waits ``busy_delay``/``reject_delay`` seconds
  (``AgentOfferDelayed``). An offer whose result never comes (the AMI link died) is taken back after
  its ring timeout plus a grace period, so no caller is stranded.
- **One leg at a time.** An agent is offered no new call while Asterisk may still hold the leg of
  its previous one: after the core withdrew an offer (``HangUpOffer``: the caller left, the offer
  timed out) or the caller ended an answered call, the agent waits for ``AgentLegGone`` (or
  ``LEG_GONE_TIMEOUT`` seconds, if that report is lost; a resync settles it too). ``OfferFailed``
  and ``AgentLegEnded`` already mean the leg is gone.
- **Wrap-up** per queue; saying ready during it ends it early.
- **Overflow.** A call waiting ``max_wait`` seconds in its queue (a call being offered finishes its
  ring first), or a call arriving while no agent serving the queue is available when the queue says
  ``when_no_agents = overflow`` (also the waiting calls when the last such agent leaves), goes to the
  queue's overflow destination: into another queue (keeping its place by virtual time, with a fresh
  ``max_wait``) or out of the core with ``SendCallTo``.
- **Announcements.** Every ``announce_every`` seconds a waiting call gets ``AnnouncePosition``: its
  1-based place among its queue's unanswered calls and the estimate ``position * AHT / n``, where
  AHT is the queue's handle time (talk plus wrap-up) smoothed over finished calls with weight 1/8,
  starting at ``handle_time_estimate``, and ``n`` the agents currently available to the queue
  (``None`` when there are none).
- **Reload** (``QueuesReconfigured``): new settings apply to waiting calls at once (timers are
  recomputed from their original times). A queue that disappeared keeps its last settings for the
  calls still in it, which go on being offered to the agents that serve it and still overflow at
  max wait; it is forgotten once it has no calls.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from acd import commands as cmd
from acd import events as ev
from acd.commands import Activity
from acd.queues_config import (
    DEFAULT_PRIORITY_STEP,
    MAX_LEVEL,
    DestinationKind,
    NoAgents,
    QueueConfig,
    Strategy,
)
from acd.views import CallSnapshot

OFFER_GRACE_SECONDS = 5.0
LEG_GONE_TIMEOUT = 5.0  # a leg whose Hangup was never reported stops blocking its agent after this
AHT_WEIGHT = 1 / 8
MAX_OVERFLOW_HOPS = 8  # queue-to-queue overflow chains stop here; the call then waits where it is

_FAILURE_TAKES_OUT = frozenset(
    {ev.OfferFailure.NO_ANSWER, ev.OfferFailure.UNREACHABLE, ev.OfferFailure.ERROR}
)


class CallState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"


@dataclass(slots=True)
class Call:
    call_id: str
    queue: str
    caller_number: str
    channel: str
    priority: int
    enqueued_at: float
    seq: int
    key: tuple[float, int] = (0.0, 0)  # (virtual time, arrival sequence): the service order
    state: CallState = CallState.WAITING
    offer_id: str | None = None
    agent_id: str | None = None
    answered_at: float | None = None
    queue_entered_at: float = 0.0
    overflow_at: float | None = None
    next_announce: float | None = None
    hops: int = 0

    def order_key(self) -> tuple[float, int]:
        return self.key


@dataclass(slots=True)
class Agent:
    agent_id: str
    endpoint: str
    queues: frozenset[str]
    available: bool = False
    activity: Activity = Activity.IDLE
    idle_since: float = 0.0
    call_id: str | None = None
    offer_id: str | None = None
    wrap_up_until: float | None = None
    calls_answered: int = 0
    skills: Mapping[str, int] = field(default_factory=dict)
    order: int = 0
    talk_time: float = 0.0
    no_answer_streak: int = 0
    not_before: float | None = None  # busy/reject delay: no offer before this time
    leg: str | None = None  # offer whose agent leg Asterisk has not reported gone yet
    leg_deadline: float | None = None
    levels: dict[str, int] = field(default_factory=dict)  # queue -> level it serves at (absent: not)
    stamp: int = 0  # bumped whenever its idle-index entries are renewed; older entries are stale

    @property
    def offerable(self) -> bool:
        return (
            self.available and self.activity is Activity.IDLE and self.not_before is None and self.leg is None
        )


@dataclass(slots=True)
class Offer:
    offer_id: str
    call_id: str
    agent_id: str
    deadline: float
    answered: bool = False


class _Pool:
    """Agents for uniform random choice: a list with O(1) removal; stale members leave when drawn."""

    __slots__ = ("items", "pos")

    def __init__(self) -> None:
        self.items: list[str] = []
        self.pos: dict[str, int] = {}

    def add(self, agent_id: str) -> None:
        if agent_id not in self.pos:
            self.pos[agent_id] = len(self.items)
            self.items.append(agent_id)

    def remove(self, agent_id: str) -> None:
        i = self.pos.pop(agent_id)
        last = self.items.pop()
        if last != agent_id:
            self.items[i] = last
            self.pos[last] = i


class Engine:
    """Automatic call distribution over any number of queues."""

    def __init__(
        self,
        queues: Mapping[str, QueueConfig] | None = None,
        *,
        priority_step: float = DEFAULT_PRIORITY_STEP,
        rng: random.Random | None = None,
    ) -> None:
        self.queues: dict[str, QueueConfig] = dict(queues or {})
        self.priority_step = priority_step
        self.rng = rng if rng is not None else random.Random(0)
        self.calls: dict[str, Call] = {}
        self.agents: dict[str, Agent] = {}
        self.offers: dict[str, Offer] = {}
        self.handle_time: dict[str, float] = {}  # queue -> smoothed talk + wrap-up seconds
        self._retired: dict[str, QueueConfig] = {}
        self._seq = itertools.count()
        self._offer_seq = itertools.count(1)
        self._waiting: dict[str, list[tuple[tuple[float, int], str]]] = {}
        # queue -> per skill level (index 0..MAX_LEVEL): lazy heap of (strategy key, stamp, agent id)
        self._idle: dict[str, list[list[tuple[tuple[object, ...], int, str]]]] = {}
        self._pools: dict[str, list[_Pool]] = {}  # the same for random queues
        self._staffed: dict[str, set[str]] = {}  # queue -> available agents serving it
        self._last_offered: dict[str, dict[str, int]] = {}  # queue -> agent -> sequence (round robin)
        self._tier_wake: dict[str, float] = {}
        self._dirty: set[str] = set()  # queues where a new (call, agent) match may exist
        self._deadlines: list[tuple[float, str, str]] = []  # lazy heap; stale entries are skipped
        self._legs: dict[str, str] = {}  # offer id -> agent waiting for that offer's leg to be gone
        # offers for legs found ringing at a rebuild (another run's): hung up, their caller held until gone
        self._cancelled: set[str] = set()
        self._handlers: dict[type, Callable[[Any, list[cmd.Command]], None]] = {
            ev.CallArrived: self._call_arrived,
            ev.CallerHungUp: self._caller_hung_up,
            ev.AgentAvailable: self._agent_available,
            ev.AgentUnavailable: self._agent_unavailable,
            ev.OfferAnswered: self._offer_answered,
            ev.OfferFailed: lambda e, out: self._offer_failed(e.offer_id, e.reason, e.at, out, penalize=True),
            ev.AgentLegEnded: self._agent_leg_ended,
            ev.AgentLegGone: self._agent_leg_gone,
            ev.TimePassed: lambda e, out: self._time_passed(e.at, out),
            ev.Resynced: self._resynced,
            ev.QueuesReconfigured: lambda e, out: self._reconfigure(e.queues, e.at, out),
        }

    # -- public API -------------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> list[cmd.Command]:
        out: list[cmd.Command] = []
        self._handlers[type(event)](event, out)  # a dict lookup: cheaper than matching ten classes
        self._dispatch(event.at, out)
        return out

    def next_deadline(self) -> float | None:
        """When the core next needs a ``TimePassed`` (offers, wrap-up, delays, overflow, tiers...)."""
        heap = self._deadlines
        while heap and not self._deadline_live(*heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def queue_config(self, name: str) -> QueueConfig:
        config = self.queues.get(name) or self._retired.get(name)
        if config is None:
            # A call for a queue nobody configured is still a citizen waiting: serve it with defaults.
            config = self.queues[name] = QueueConfig(name)
        return config

    def _config(self, name: str) -> QueueConfig:
        """The queue's settings without registering it (a removed queue must not come back)."""
        return self.queues.get(name) or self._retired.get(name) or QueueConfig(name)

    def waiting_calls(self, queue: str | None = None) -> list[Call]:
        """Calls not yet answered (waiting or being offered), in service order."""
        calls = [
            c
            for c in self.calls.values()
            if c.state is not CallState.CONNECTED and (queue is None or c.queue == queue)
        ]
        return sorted(calls, key=Call.order_key)

    def call_snapshots(self) -> tuple[CallSnapshot, ...]:
        """Calls not yet answered, in service order, as plain data (see ``acd.views``)."""
        return tuple(
            CallSnapshot(
                c.call_id, c.queue, c.caller_number, c.priority, c.state.value, c.agent_id, c.enqueued_at
            )
            for c in self.waiting_calls()
        )

    def staffed(self, queue: str) -> int:
        """How many available agents serve the queue (ready, ringing, talking or in wrap-up)."""
        return len(self._staffed.get(queue, ()))

    def estimated_wait(self, queue: str, position: int) -> float | None:
        agents = self.staffed(queue)
        if agents == 0:
            return None
        aht = self.handle_time.get(queue, self.queue_config(queue).handle_time_estimate)
        return position * aht / agents

    # -- event handlers ---------------------------------------------------------------------------

    def _call_arrived(self, e: ev.CallArrived, out: list[cmd.Command]) -> None:
        if e.call_id in self.calls:
            return  # the same call reported twice (event replay after a reconnect)
        config = self.queue_config(e.queue)
        enqueued_at = e.enqueued_at if e.enqueued_at is not None else e.at
        call = self._new_call(e.call_id, e.queue, e.caller_number, e.channel, e.priority, enqueued_at)
        out.append(
            cmd.CallQueued(call.call_id, call.queue, call.caller_number, call.priority, call.enqueued_at)
        )
        self._schedule_call_timers(call, e.at)
        if self._must_overflow_unstaffed(config):
            self._overflow(call, "no_agents", e.at, out)
        else:
            self._push_waiting(call)

    def _new_call(
        self, call_id: str, queue: str, caller_number: str, channel: str, priority: int, enqueued_at: float
    ) -> Call:
        seq = next(self._seq)
        call = Call(
            call_id=call_id,
            queue=queue,
            caller_number=caller_number,
            channel=channel,
            priority=priority,
            enqueued_at=enqueued_at,
            seq=seq,
            key=(enqueued_at - priority * self.priority_step, seq),
            queue_entered_at=enqueued_at,
        )
        self.calls[call_id] = call
        return call

    def _caller_hung_up(self, e: ev.CallerHungUp, out: list[cmd.Command]) -> None:
        call = self.calls.pop(e.call_id, None)
        if call is None:
            return
        if call.state is CallState.CONNECTED:
            if call.offer_id is not None:
                self._await_leg(call.agent_id or "", call.offer_id, e.at)
            self._finish_call(call, e.at, out)
            return
        if call.state is CallState.OFFERED and call.offer_id is not None:
            offer = self.offers.pop(call.offer_id)
            self._cancelled.discard(offer.offer_id)
            out.append(cmd.HangUpOffer(offer.offer_id, offer.agent_id))
            self._await_leg(offer.agent_id, offer.offer_id, e.at)
            if self._rings_for(offer):
                self._agent_back_to_idle(offer.agent_id, e.at, out, keep_idle_since=True)
        out.append(cmd.CallAbandoned(call.call_id, call.queue, call.enqueued_at, e.at, e.cause))

    def _agent_available(self, e: ev.AgentAvailable, out: list[cmd.Command]) -> None:
        agent = self.agents.get(e.agent_id)
        if agent is None:
            agent = self.agents[e.agent_id] = Agent(e.agent_id, e.endpoint, e.queues, idle_since=e.at)
        was_available = agent.available
        agent.endpoint, agent.queues, agent.available = e.endpoint, e.queues, True
        agent.skills, agent.order = dict(e.skills), e.order
        for q in e.queues:
            self.queue_config(q)
        self._update_membership(agent)
        if agent.activity is Activity.WRAP_UP:
            # Saying "ready" during after-call work ends it early.
            self._agent_back_to_idle(agent.agent_id, e.at, out, keep_idle_since=False)
        elif agent.activity is Activity.IDLE:
            if not was_available:
                agent.idle_since = e.at
            if agent.offerable:
                self._push_idle(agent)  # also when only its queues or skills changed

    def _agent_unavailable(self, e: ev.AgentUnavailable, out: list[cmd.Command]) -> None:
        agent = self.agents.get(e.agent_id)
        if agent is None or not agent.available:
            return
        agent.available = False  # idle-index entries for it go stale
        emptied = [q for q in agent.levels if self._staffed.get(q) == {agent.agent_id}]
        self._update_membership(agent)
        for queue in emptied:
            if self._must_overflow_unstaffed(self.queue_config(queue)):
                for call in sorted(self.calls.values(), key=Call.order_key):
                    if call.queue == queue and call.state is CallState.WAITING:
                        self._overflow(call, "no_agents", e.at, out)

    def _offer_answered(self, e: ev.OfferAnswered, out: list[cmd.Command]) -> None:
        offer = self.offers.get(e.offer_id)
        if offer is None or offer.answered:
            return
        call = self.calls.get(offer.call_id)
        if call is None:  # the caller left while the phone rang; the agent picked up a dead line
            self.offers.pop(e.offer_id)
            out.append(cmd.HangUpOffer(offer.offer_id, offer.agent_id))
            self._await_leg(offer.agent_id, offer.offer_id, e.at)
            return
        offer.answered = True
        agent = self.agents[offer.agent_id]
        call.state, call.answered_at = CallState.CONNECTED, e.at
        agent.activity, agent.calls_answered = Activity.ON_CALL, agent.calls_answered + 1
        agent.no_answer_streak = 0
        out.append(
            cmd.CallAnswered(
                call.call_id, call.queue, call.caller_number, agent.agent_id, call.enqueued_at, e.at
            )
        )
        out.append(cmd.AgentActivityChanged(agent.agent_id, Activity.ON_CALL, e.at, call.call_id))

    def _offer_failed(
        self,
        offer_id: str,
        reason: ev.OfferFailure,
        at: float,
        out: list[cmd.Command],
        *,
        penalize: bool,
    ) -> None:
        offer = self.offers.get(offer_id)
        if offer is None or offer.answered:
            return
        del self.offers[offer_id]
        self._cancelled.discard(offer_id)
        call = self.calls.get(offer.call_id)
        config = self.queue_config(call.queue) if call is not None else None
        if call is not None:
            call.state, call.offer_id, call.agent_id = CallState.WAITING, None, None
            if call.overflow_at is not None and call.overflow_at <= at:
                self._overflow(call, "max_wait", at, out)
            else:
                self._push_waiting(call)
        if not self._rings_for(offer):
            return  # a leg found at a rebuild, for an agent that is not (or no longer) ringing for it
        agent = self.agents[offer.agent_id]
        delay_until = None
        if penalize and config is not None:
            if reason in _FAILURE_TAKES_OUT:
                agent.available = False
                self._update_membership(agent)
                out.append(cmd.AgentMissedOffer(agent.agent_id, offer.call_id, reason, at))
                if reason is ev.OfferFailure.NO_ANSWER:
                    agent.no_answer_streak += 1
                    if config.max_no_answer and agent.no_answer_streak >= config.max_no_answer:
                        out.append(cmd.AgentExhaustedNoAnswer(agent.agent_id, agent.no_answer_streak, at))
                        agent.no_answer_streak = 0
            else:
                delay = config.busy_delay if reason is ev.OfferFailure.BUSY else config.reject_delay
                if delay > 0:
                    delay_until = at + delay
                    out.append(cmd.AgentOfferDelayed(agent.agent_id, offer.call_id, reason, delay_until, at))
        self._agent_back_to_idle(agent.agent_id, at, out, keep_idle_since=True, not_before=delay_until)

    def _agent_leg_ended(self, e: ev.AgentLegEnded, out: list[cmd.Command]) -> None:
        self._leg_gone(e.offer_id)
        offer = self.offers.get(e.offer_id)
        if offer is None:
            return
        if not offer.answered:
            self._offer_failed(e.offer_id, ev.OfferFailure.NO_ANSWER, e.at, out, penalize=True)
            return
        call = self.calls.pop(offer.call_id, None)
        if call is not None:
            self._finish_call(call, e.at, out)

    def _rings_for(self, offer: Offer) -> bool:
        """Whether the offer's agent is the one ringing for it (a leg found at a rebuild may not be)."""
        agent = self.agents.get(offer.agent_id)
        return agent is not None and agent.offer_id == offer.offer_id

    def _agent_leg_gone(self, e: ev.AgentLegGone, out: list[cmd.Command]) -> None:
        self._leg_gone(e.offer_id)
        if e.offer_id in self._cancelled:  # the leg cancelled at a rebuild is gone: its caller may be offered
            self._offer_failed(e.offer_id, ev.OfferFailure.ERROR, e.at, out, penalize=False)

    def _await_leg(self, agent_id: str, offer_id: str, now: float) -> None:
        """The agent's leg of this offer may still exist: no new offer to it until it is gone."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        if agent.leg is not None:
            self._legs.pop(agent.leg, None)
        agent.leg, agent.leg_deadline = offer_id, now + LEG_GONE_TIMEOUT
        self._legs[offer_id] = agent_id
        heapq.heappush(self._deadlines, (agent.leg_deadline, "leg", agent_id))

    def _leg_gone(self, offer_id: str) -> None:
        agent = self.agents.get(self._legs.pop(offer_id, ""))
        if agent is None or agent.leg != offer_id:
            return
        agent.leg = agent.leg_deadline = None
        if agent.offerable:
            self._push_idle(agent)

    def _time_passed(self, now: float, out: list[cmd.Command]) -> None:
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            at, kind, key = heapq.heappop(heap)
            if not self._deadline_live(at, kind, key):
                continue
            if kind == "offer":
                offer = self.offers[key]
                out.append(cmd.HangUpOffer(offer.offer_id, offer.agent_id))
                self._await_leg(offer.agent_id, offer.offer_id, now)
                self._offer_failed(key, ev.OfferFailure.ERROR, now, out, penalize=False)
            elif kind == "leg":
                agent = self.agents[key]
                if agent.leg is not None:
                    self._leg_gone(agent.leg)
            elif kind == "wrap_up":
                self._agent_back_to_idle(key, now, out, keep_idle_since=False)
            elif kind == "delay":
                agent = self.agents[key]
                agent.not_before = None
                if agent.offerable:
                    self._push_idle(agent)
            elif kind == "overflow":
                call = self.calls[key]
                if call.state is CallState.WAITING:  # a ringing offer settles first (see _offer_failed)
                    call.overflow_at = None
                    self._overflow(call, "max_wait", now, out)
            elif kind == "announce":
                self._announce(self.calls[key], now, out)
            elif kind == "tier":
                del self._tier_wake[key]
                self._dirty.add(key)

    def _resynced(self, e: ev.Resynced, out: list[cmd.Command]) -> None:
        live = {c.call_id: c for c in e.calls}
        for leg in e.legs:
            self._found_leg(leg, live, e.at, out)
        for call in list(self.calls.values()):
            seen = live.get(call.call_id)
            if seen is None:
                self._caller_hung_up(ev.CallerHungUp(e.at, call.call_id, "gone while the link was down"), out)
            elif call.state is CallState.OFFERED and call.offer_id is not None:
                offer = self.offers[call.offer_id]
                if not seen.waiting:
                    self._offer_answered(ev.OfferAnswered(e.at, offer.offer_id), out)
                elif offer.offer_id not in e.live_channels:
                    self._offer_failed(offer.offer_id, ev.OfferFailure.ERROR, e.at, out, penalize=False)
            elif call.state is CallState.WAITING and not seen.waiting:
                # Someone else connected it while the link was down (Asterisk's fallback queue):
                # it must not be offered again, or an agent's Bridge() would take it from them.
                del self.calls[call.call_id]
                out.append(
                    cmd.CallTakenOver(call.call_id, call.queue, call.caller_number, call.enqueued_at, e.at)
                )
        for seen in e.calls:
            if seen.call_id not in self.calls and seen.waiting:
                self._call_arrived(
                    ev.CallArrived(
                        e.at,
                        seen.call_id,
                        seen.queue,
                        seen.caller_number,
                        seen.channel,
                        seen.priority,
                        seen.enqueued_at,
                    ),
                    out,
                )
        for offer in list(self.offers.values()):
            if offer.answered and offer.offer_id not in e.live_channels:
                self._agent_leg_ended(ev.AgentLegEnded(e.at, offer.offer_id), out)
        for offer_id in [o for o in self._legs if o not in e.live_channels]:
            self._leg_gone(offer_id)
        for offer_id in [o for o in self._cancelled if o not in e.live_channels]:
            self._offer_failed(offer_id, ev.OfferFailure.ERROR, e.at, out, penalize=False)

    def _found_leg(
        self, leg: ev.LiveLeg, live: Mapping[str, ev.LiveCall], at: float, out: list[cmd.Command]
    ) -> None:
        """Take over an agent leg another run originated (see ``ev.Resynced``)."""
        if leg.leg_id in self.offers:
            return
        seen = live.get(leg.call_id)
        if seen is None or leg.call_id in self.calls:
            # Its caller is gone, or followed through another leg: this one must not ring on.
            if not leg.answered:
                out.append(cmd.HangUpOffer(leg.leg_id, leg.agent_id))
                self._await_leg(leg.agent_id, leg.leg_id, at)
            return
        call = self._new_call(
            seen.call_id, seen.queue, seen.caller_number, seen.channel, seen.priority, seen.enqueued_at
        )
        call.offer_id, call.agent_id = leg.leg_id, leg.agent_id
        agent = self.agents.get(leg.agent_id)
        free = agent is not None and agent.call_id is None
        if leg.answered and not seen.waiting:
            answered_at = leg.answered_at if leg.answered_at is not None else at
            call.state, call.answered_at = CallState.CONNECTED, answered_at
            self.offers[leg.leg_id] = Offer(leg.leg_id, call.call_id, leg.agent_id, at, answered=True)
            out.append(
                cmd.CallResumed(call.call_id, call.queue, call.caller_number, call.priority, leg.agent_id,
                                call.enqueued_at, answered_at, at)
            )  # fmt: skip
            if agent is not None and free:
                agent.activity, agent.offer_id, agent.call_id = Activity.ON_CALL, leg.leg_id, call.call_id
                out.append(cmd.AgentActivityChanged(agent.agent_id, Activity.ON_CALL, at, call.call_id))
            return
        # Still ringing (or answered but not yet bridged): cancel it; the caller waits for its end.
        call.state = CallState.OFFERED
        offer = self.offers[leg.leg_id] = Offer(leg.leg_id, call.call_id, leg.agent_id, at + LEG_GONE_TIMEOUT)
        self._cancelled.add(leg.leg_id)
        heapq.heappush(self._deadlines, (offer.deadline, "offer", offer.offer_id))
        self._schedule_call_timers(call, at)
        out.append(
            cmd.CallQueued(call.call_id, call.queue, call.caller_number, call.priority, call.enqueued_at)
        )
        out.append(cmd.HangUpOffer(leg.leg_id, leg.agent_id))
        if agent is not None and free:
            agent.activity, agent.offer_id, agent.call_id = Activity.RINGING, leg.leg_id, call.call_id
            out.append(cmd.AgentActivityChanged(agent.agent_id, Activity.RINGING, at, call.call_id))

    def _reconfigure(self, queues: Iterable[QueueConfig], now: float, out: list[cmd.Command]) -> None:
        new = {q.name: q for q in queues}
        in_use = {c.queue for c in self.calls.values()}
        old = {**self._retired, **self.queues}
        self._retired = {n: c for n, c in old.items() if n not in new and n in in_use}
        self.queues = new
        # Rebuild every index from the calls and agents themselves: skills, strategies and tiers may
        # all have changed. Stale heap entries die with the old heaps.
        self._idle.clear()
        self._pools.clear()
        self._staffed.clear()
        self._waiting.clear()
        self._tier_wake.clear()
        for agent in self.agents.values():
            self._update_membership(agent)
            if agent.offerable:
                self._push_idle(agent)
        for call in sorted(self.calls.values(), key=Call.order_key):
            if call.state is CallState.CONNECTED:
                continue
            self._schedule_call_timers(call, now)
            if call.state is CallState.WAITING:
                if call.overflow_at is not None and call.overflow_at <= now:
                    self._overflow(call, "max_wait", now, out)
                else:
                    self._push_waiting(call)
        self._dirty.update(self._waiting)

    # -- distribution -----------------------------------------------------------------------------

    def _dispatch(self, now: float, out: list[cmd.Command]) -> None:
        """Offer calls until no queue touched since the last dispatch has a (call, agent) match.

        Each dirty queue's match (its head call, the agent its strategy picks) is computed once and
        kept until an offer takes that call's queue or that agent; the earliest call wins.
        """
        dirty = self._dirty
        heads: dict[str, Call] = {}
        matches: dict[str, tuple[Call, Agent]] = {}
        while dirty:
            best: tuple[Call, Agent] | None = None
            for queue in list(dirty):
                match = matches.get(queue)
                if match is None:
                    call = heads.get(queue) or self._head_call(queue)
                    agent = self._best_agent(queue, call, now) if call is not None else None
                    if call is None or agent is None:
                        dirty.discard(queue)
                        continue
                    heads[queue] = call
                    match = matches[queue] = (call, agent)
                if best is None or match[0].key < best[0].key:
                    best = match
            if best is None:
                return
            call, agent = best
            self._offer(call, agent, now, out)
            del heads[call.queue]
            for queue in [q for q, (_, a) in matches.items() if a is agent or q == call.queue]:
                del matches[queue]

    def _best_agent(self, queue: str, call: Call, now: float) -> Agent | None:
        """The agent the queue's strategy picks, best skill level first, within the call's tier."""
        config = self._config(queue)
        tiers = config.tier_levels()
        waited = now - call.key[0]
        min_level, next_after = tiers[0].level, None
        for tier in tiers[1:]:
            if tier.after > waited:
                next_after = tier.after
                break
            min_level = tier.level
        levels = range(MAX_LEVEL, min_level - 1, -1)
        if config.strategy is Strategy.RANDOM:
            pools = self._pools.get(queue)
            if pools is not None:
                for level in levels:
                    if (agent := self._random_idle(pools[level], queue, level)) is not None:
                        return agent
        else:
            heaps = self._idle.get(queue)
            if heaps is not None:
                for level in levels:
                    heap = heaps[level]
                    if heap and (agent := self._first_idle(heap, queue, level)) is not None:
                        return agent
        if next_after is not None:
            at = call.key[0] + next_after
            if self._tier_wake.get(queue) != at:
                self._tier_wake[queue] = at
                heapq.heappush(self._deadlines, (at, "tier", queue))
        return None

    def _first_idle(
        self, heap: list[tuple[tuple[object, ...], int, str]], queue: str, level: int
    ) -> Agent | None:
        while heap:
            _, stamp, agent_id = heap[0]
            agent = self.agents[agent_id]
            if (
                agent.stamp == stamp
                and agent.available
                and agent.activity is Activity.IDLE
                and agent.not_before is None
                and agent.leg is None
                and agent.levels.get(queue) == level
            ):
                return agent
            heapq.heappop(heap)
        return None

    def _random_idle(self, pool: _Pool, queue: str, level: int) -> Agent | None:
        while pool.items:
            agent_id = pool.items[self.rng.randrange(len(pool.items))]
            agent = self.agents[agent_id]
            if agent.offerable and agent.levels.get(queue) == level:
                return agent
            pool.remove(agent_id)
        return None

    def _offer(self, call: Call, agent: Agent, now: float, out: list[cmd.Command]) -> None:
        config = self.queue_config(call.queue)
        offer = Offer(
            offer_id=f"o{next(self._offer_seq)}",
            call_id=call.call_id,
            agent_id=agent.agent_id,
            deadline=now + config.ring_timeout + OFFER_GRACE_SECONDS,
        )
        self.offers[offer.offer_id] = offer
        call.state, call.offer_id, call.agent_id = CallState.OFFERED, offer.offer_id, agent.agent_id
        agent.activity, agent.offer_id, agent.call_id = Activity.RINGING, offer.offer_id, call.call_id
        if config.strategy is Strategy.ROUND_ROBIN:
            self._last_offered.setdefault(call.queue, {})[agent.agent_id] = next(self._seq)
        heapq.heappush(self._deadlines, (offer.deadline, "offer", offer.offer_id))
        out.append(
            cmd.RingAgent(
                offer.offer_id,
                call.call_id,
                agent.agent_id,
                agent.endpoint,
                call.caller_number,
                call.channel,
                config.ring_timeout,
            )
        )
        out.append(cmd.CallOffered(call.call_id, offer.offer_id, agent.agent_id, now))
        out.append(cmd.AgentActivityChanged(agent.agent_id, Activity.RINGING, now, call.call_id))

    def _overflow(self, call: Call, reason: str, now: float, out: list[cmd.Command]) -> None:
        """Send a waiting call to its queue's overflow destination (it keeps waiting if there is none)."""
        config = self.queue_config(call.queue)
        destination = config.overflow
        if destination is None or call.hops >= MAX_OVERFLOW_HOPS:
            self._push_waiting(call)
            return
        out.append(cmd.CallOverflowed(call.call_id, call.queue, destination, reason, call.enqueued_at, now))
        if destination.kind is DestinationKind.QUEUE:
            call.queue, call.queue_entered_at, call.hops = destination.target, now, call.hops + 1
            target = self.queue_config(destination.target)
            self._schedule_call_timers(call, now)
            if self._must_overflow_unstaffed(target):
                self._overflow(call, "no_agents", now, out)
            else:
                self._push_waiting(call)
            return
        del self.calls[call.call_id]
        out.append(cmd.SendCallTo(call.call_id, destination, call.channel))

    def _announce(self, call: Call, now: float, out: list[cmd.Command]) -> None:
        config = self._config(call.queue)
        if config.announce_every > 0:
            call.next_announce = now + config.announce_every
            heapq.heappush(self._deadlines, (call.next_announce, "announce", call.call_id))
        else:
            call.next_announce = None
        if call.state is not CallState.WAITING:
            return  # an agent's phone rings for it: the next period will tell, if still needed
        position = 1 + sum(
            1
            for c in self.calls.values()
            if c.queue == call.queue and c.state is not CallState.CONNECTED and c.key < call.key
        )
        estimate = self.estimated_wait(call.queue, position)
        out.append(cmd.AnnouncePosition(call.call_id, position, estimate, call.channel, call.queue))

    def _finish_call(self, call: Call, at: float, out: list[cmd.Command]) -> None:
        agent_id = call.agent_id or ""
        if call.offer_id is not None:
            self.offers.pop(call.offer_id, None)
        out.append(cmd.CallFinished(call.call_id, call.queue, agent_id, call.answered_at or at, at))
        config = self.queue_config(call.queue)
        talk = at - (call.answered_at if call.answered_at is not None else at)
        aht = self.handle_time.get(call.queue, config.handle_time_estimate)
        self.handle_time[call.queue] = aht + AHT_WEIGHT * (talk + config.wrap_up - aht)
        agent = self.agents.get(agent_id)
        if agent is None or agent.call_id != call.call_id:
            return
        agent.talk_time += talk
        agent.offer_id = agent.call_id = None
        if config.wrap_up > 0:
            agent.activity, agent.wrap_up_until = Activity.WRAP_UP, at + config.wrap_up
            heapq.heappush(self._deadlines, (agent.wrap_up_until, "wrap_up", agent.agent_id))
            out.append(cmd.AgentActivityChanged(agent.agent_id, Activity.WRAP_UP, at, call.call_id))
        else:
            self._agent_back_to_idle(agent.agent_id, at, out, keep_idle_since=False)

    def _agent_back_to_idle(
        self,
        agent_id: str,
        at: float,
        out: list[cmd.Command],
        *,
        keep_idle_since: bool,
        not_before: float | None = None,
    ) -> None:
        agent = self.agents[agent_id]
        agent.activity, agent.offer_id, agent.call_id, agent.wrap_up_until = Activity.IDLE, None, None, None
        if not keep_idle_since:
            agent.idle_since = at
        if not_before is not None:
            agent.not_before = not_before
            heapq.heappush(self._deadlines, (not_before, "delay", agent_id))
        if agent.offerable:
            self._push_idle(agent)
        out.append(cmd.AgentActivityChanged(agent_id, Activity.IDLE, at))

    # -- indexes ----------------------------------------------------------------------------------

    def _schedule_call_timers(self, call: Call, now: float) -> None:
        config = self._config(call.queue)
        call.overflow_at = None
        if config.max_wait is not None and config.overflow is not None:
            call.overflow_at = call.queue_entered_at + config.max_wait
            heapq.heappush(self._deadlines, (call.overflow_at, "overflow", call.call_id))
        if config.announce_every <= 0:
            call.next_announce = None
        elif call.next_announce is None or call.next_announce > now + config.announce_every:
            call.next_announce = max(now, call.queue_entered_at) + config.announce_every
            heapq.heappush(self._deadlines, (call.next_announce, "announce", call.call_id))

    def _must_overflow_unstaffed(self, config: QueueConfig) -> bool:
        return (
            config.when_no_agents is NoAgents.OVERFLOW
            and config.overflow is not None
            and not self._staffed.get(config.name)
        )

    def _level(self, agent: Agent, queue: str) -> int:
        config = self._config(queue)
        if config.skill is None:
            return MAX_LEVEL
        return min(agent.skills.get(config.skill, 0), MAX_LEVEL)

    def _update_membership(self, agent: Agent) -> None:
        """Recompute the levels the agent serves at, and whether it counts as staffing each queue."""
        for queue in agent.levels:
            self._staffed.get(queue, set()).discard(agent.agent_id)
        agent.levels = {q: lvl for q in agent.queues if (lvl := self._level(agent, q)) > 0}
        if agent.available:
            for queue in agent.levels:
                self._staffed.setdefault(queue, set()).add(agent.agent_id)

    def _push_waiting(self, call: Call) -> None:
        heapq.heappush(self._waiting.setdefault(call.queue, []), (call.key, call.call_id))
        self._dirty.add(call.queue)

    def _push_idle(self, agent: Agent) -> None:
        agent.stamp += 1
        for queue, level in agent.levels.items():
            config = self._config(queue)
            self._dirty.add(queue)
            if config.strategy is Strategy.RANDOM:
                pools = self._pools.get(queue) or self._pools.setdefault(
                    queue, [_Pool() for _ in range(MAX_LEVEL + 1)]
                )
                pools[level].add(agent.agent_id)
                continue
            heaps = self._idle.get(queue) or self._idle.setdefault(queue, [[] for _ in range(MAX_LEVEL + 1)])
            heapq.heappush(heaps[level], (self._strategy_key(config, agent), agent.stamp, agent.agent_id))

    def _strategy_key(self, config: QueueConfig, agent: Agent) -> tuple[object, ...]:
        strategy = config.strategy
        if strategy is Strategy.LONGEST_IDLE:
            return (agent.idle_since,)
        if strategy is Strategy.FEWEST_CALLS:
            return (agent.calls_answered, agent.idle_since)
        if strategy is Strategy.LEAST_TALK_TIME:
            return (agent.talk_time, agent.idle_since)
        if strategy is Strategy.ROUND_ROBIN:
            last = self._last_offered.get(config.name, {}).get(agent.agent_id, -1)
            return (last, agent.order, agent.agent_id)
        return (agent.order, agent.agent_id)  # top-down

    def _head_call(self, queue: str) -> Call | None:
        heap = self._waiting.get(queue)
        while heap:
            key, call_id = heap[0]
            call = self.calls.get(call_id)
            if (
                call is not None
                and call.state is CallState.WAITING
                and call.queue == queue
                and call.key == key
            ):
                return call
            heapq.heappop(heap)
        return None

    def _deadline_live(self, at: float, kind: str, key: str) -> bool:
        if kind == "offer":
            offer = self.offers.get(key)
            return offer is not None and not offer.answered and offer.deadline == at
        if kind == "tier":
            return self._tier_wake.get(key) == at
        if kind in ("overflow", "announce"):
            call = self.calls.get(key)
            if call is None or call.state is CallState.CONNECTED:
                return False
            return (call.overflow_at if kind == "overflow" else call.next_announce) == at
        agent = self.agents.get(key)
        if agent is None:
            return False
        if kind == "delay":
            return agent.not_before == at
        if kind == "leg":
            return agent.leg is not None and agent.leg_deadline == at
        return agent.activity is Activity.WRAP_UP and agent.wrap_up_until == at
