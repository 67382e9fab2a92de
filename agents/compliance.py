"""Unauthorized-busy incidents: rules over presence and the agent's phone. No I/O, no clock.

The tracker is fed what happened, each fact with its time: presence transitions, the phone's
registration and device state (from Asterisk), supervisors' approvals, and the passing of time
(:meth:`ComplianceTracker.tick` at :meth:`ComplianceTracker.next_deadline`). It answers with
incidents opened and closed, and with :class:`TakeOutOfService` when an agent left the post.

Every rule is a condition with an *episode* (what it is about: this busy period, this loss of the
phone) and a *due* time. An incident opens when its condition has held until its due time, and
closes as soon as the condition stops holding or turns into another episode (busy with another
reason, say). Incidents carry the time the breach began, not the time it was noticed:

==========================  ===========================================  =========================
kind                        condition                                    starts at
==========================  ===========================================  =========================
busy_over_limit             busy with a reason that has a per-occurrence  busy start + limit
                            limit (not forced by a supervisor)
busy_unapproved             busy with a reason that needs approval,       busy start (or the end of
                            no approval                                   the busy, never)
busy_over_shift_allowance   busy with a reason whose per-shift total      when the total crosses it
                            exceeds its allowance
phone_busy_while_ready      "ready", and the phone in use outside any     when both became true
                            call the ACD gave (after a grace period)
left_post                   logged in, phone unregistered/unreachable     when the phone went away
                            (after a grace period; the agent is then set
                            not ready)
==========================  ===========================================  =========================

A busy forced by a supervisor, or set by the system, breaks no busy rule: the supervisor decided.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from agents.busy_reasons import BusyConfig
from agents.presence import AgentState, Cause, Transition

LEFT_POST = "left_post"  # the not-ready reason given to an agent whose phone went away


class IncidentKind(StrEnum):
    """Every kind of agent incident, defined here once (the log, the metrics and the API use it)."""

    BUSY_OVER_LIMIT = "busy_over_limit"
    BUSY_UNAPPROVED = "busy_unapproved"
    BUSY_OVER_SHIFT_ALLOWANCE = "busy_over_shift_allowance"
    PHONE_BUSY_WHILE_READY = "phone_busy_while_ready"
    LEFT_POST = "left_post"
    MISSED_OFFER = "missed_offer"  # distribution: the phone did not take an offered call
    NO_ANSWER_LIMIT = "no_answer_limit"  # distribution: max-no-answer reached, the agent set busy
    LOGIN_PIN_FAILURES = "login_pin_failures"  # a burst of wrong PINs at feature-code login


#: The unauthorized-busy kinds: the rules of :class:`ComplianceTracker`, in this order.
UNAUTHORIZED_BUSY = (
    IncidentKind.BUSY_OVER_LIMIT,
    IncidentKind.BUSY_UNAPPROVED,
    IncidentKind.BUSY_OVER_SHIFT_ALLOWANCE,
    IncidentKind.PHONE_BUSY_WHILE_READY,
    IncidentKind.LEFT_POST,
)


class Authority(StrEnum):
    """Who stands behind a busy period."""

    AGENT = "agent"  # the agent's own choice
    APPROVED = "approved"  # the agent's choice, approved by a supervisor
    FORCED = "forced"  # a supervisor's or the system's decision


#: Asterisk device states that mean the phone is in a call (DND shows as BUSY on some phones).
PHONE_IN_USE = frozenset({"INUSE", "BUSY", "ONHOLD", "RINGINUSE"})
#: Device states that mean no phone is there to ring.
PHONE_ABSENT = frozenset({"UNAVAILABLE", "INVALID"})


@dataclass(frozen=True, slots=True)
class IncidentOpened:
    incident_id: str
    agent_id: str
    kind: IncidentKind
    reason: str  # the busy reason, or the phone's device state
    started_at: float
    detected_at: float


@dataclass(frozen=True, slots=True)
class IncidentClosed:
    incident_id: str
    agent_id: str
    kind: IncidentKind
    reason: str
    started_at: float
    ended_at: float

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class TakeOutOfService:
    """The agent left the post: set it not ready (reason :data:`LEFT_POST`)."""

    agent_id: str
    at: float


Output = IncidentOpened | IncidentClosed | TakeOutOfService


@dataclass(slots=True)
class _Phone:
    registered: bool | None = None  # from ContactStatus; None = not heard of yet
    device: str = ""  # Asterisk device state, e.g. NOT_INUSE, INUSE, UNAVAILABLE
    absent_since: float | None = None
    in_use_since: float | None = None

    @property
    def absent(self) -> bool:
        return self.registered is False or self.device in PHONE_ABSENT

    @property
    def in_use(self) -> bool:
        return self.device in PHONE_IN_USE


@dataclass(frozen=True, slots=True)
class _Due:
    """A rule's condition holds: what it is about, when it began, when it becomes an incident."""

    episode: tuple[object, ...]
    reason: str
    started_at: float
    due_at: float


@dataclass(slots=True)
class _Open:
    opened: IncidentOpened
    episode: tuple[object, ...]


@dataclass(slots=True)
class _Agent:
    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    reason: str = ""
    endpoint: str | None = None
    authority: Authority = Authority.AGENT
    session_start: float = 0.0  # log in
    logged_out_at: float | None = None
    shift_used: dict[str, float] = field(default_factory=dict)  # busy seconds per reason, ended periods
    approvals: set[str] = field(default_factory=set)  # approved reasons not yet taken
    open: dict[IncidentKind, _Open] = field(default_factory=dict)
    carried: IncidentOpened | None = None  # an unapproved busy the previous run left open


@dataclass(frozen=True, slots=True)
class AgentCompliance:
    """What the live view shows of an agent."""

    limit_seconds: float | None  # of the current busy reason (the smaller of occurrence and shift)
    over_limit_seconds: float  # 0 when not over
    open_incidents: tuple[IncidentOpened, ...]
    authority: Authority | None  # of the current busy period
    phone: str  # registered/device state summary: "NOT_INUSE", "UNAVAILABLE", "" (unknown)


class ComplianceTracker:
    """The incident rules for all agents.

    ``new_id`` names each new incident. The ids must be unique forever, across restarts and across
    instances of the service (the log keys incidents by them), so the shell passes random ids in.
    """

    def __init__(self, config: BusyConfig, new_id: Callable[[], str]) -> None:
        self.config = config
        self._new_id = new_id
        self.agents: dict[str, _Agent] = {}
        self.phones: dict[str, _Phone] = {}

    def new_incident_id(self) -> str:
        """An id for an incident of another rule set (feature-code login), from the same sequence."""
        return self._new_id()

    # -- facts ----------------------------------------------------------------------------------

    def transition(self, t: Transition, endpoint: str | None = None) -> list[Output]:
        """A presence transition; ``endpoint`` is the agent's phone after it (None when unknown)."""
        out = self._advance(t.at)
        agent = self._agent(t.agent_id)
        if agent.state is AgentState.BUSY and agent.authority is not Authority.FORCED:
            used = agent.shift_used.get(agent.reason, 0.0)
            agent.shift_used[agent.reason] = used + (t.at - agent.since)
        if t.to_state is AgentState.LOGGED_OUT:
            agent.logged_out_at = t.at
            agent.endpoint = None
            agent.approvals.clear()
        elif t.from_state is AgentState.LOGGED_OUT:
            gap = self.config.rules.shift_gap
            if agent.logged_out_at is None or t.at - agent.logged_out_at > gap:
                agent.shift_used.clear()
            agent.session_start = t.at
        if endpoint is not None and t.to_state is not AgentState.LOGGED_OUT:
            agent.endpoint = endpoint
        agent.state, agent.since, agent.reason = t.to_state, t.at, t.reason
        if t.to_state is AgentState.BUSY:
            agent.authority = self._authority(agent, t)
            self._resume(agent, t)
        out += self._evaluate(agent, t.at, strict=False)
        return out

    def carry_over(self, incident: IncidentOpened) -> None:
        """A ``busy_unapproved`` incident the previous run left open, before its agent is restored.

        The restore (the system putting the agent back into the same busy) continues it: the busy is
        the agent's own again and the incident stays open under its id and start, until a supervisor
        approves or the busy ends. See :meth:`not_carried` for those the restore did not continue.
        """
        if incident.kind is IncidentKind.BUSY_UNAPPROVED:
            self._agent(incident.agent_id).carried = incident

    def not_carried(self) -> list[IncidentOpened]:
        """After the restore: the carried-over incidents it did not continue (to be closed)."""
        left = [agent.carried for agent in self.agents.values() if agent.carried is not None]
        for agent in self.agents.values():
            agent.carried = None
        return left

    def contact_status(self, endpoint: str, registered: bool, at: float) -> list[Output]:
        """PJSIP ContactStatus: the phone registered/reachable (True) or removed/unreachable (False)."""
        out = self._advance(at)
        phone = self._phone(endpoint)
        was_absent, was_in_use = phone.absent, phone.in_use
        phone.registered = registered
        if registered and phone.device in PHONE_ABSENT:
            phone.device = ""  # a DeviceStateChange follows; meanwhile the contact is the fresher fact
        self._phone_changed(phone, was_absent, was_in_use, at)
        return out + self._evaluate_endpoint(endpoint, at)

    def device_state(self, endpoint: str, state: str, at: float) -> list[Output]:
        """DeviceStateChange (or a DeviceStateList item) for ``PJSIP/<endpoint>``."""
        out = self._advance(at)
        phone = self._phone(endpoint)
        was_absent, was_in_use = phone.absent, phone.in_use
        phone.device = state.upper()
        if phone.device in PHONE_ABSENT:
            phone.registered = False
        elif phone.device and phone.device != "UNKNOWN":
            phone.registered = True
        self._phone_changed(phone, was_absent, was_in_use, at)
        return out + self._evaluate_endpoint(endpoint, at)

    def approve(self, agent_id: str, reason: str, at: float) -> list[Output]:
        """A supervisor approved ``reason`` for the agent: now if busy with it, else its next busy."""
        out = self._advance(at)
        agent = self._agent(agent_id)
        if agent.state is AgentState.BUSY and agent.reason == reason:
            if agent.authority is Authority.AGENT:
                agent.authority = Authority.APPROVED
        else:
            agent.approvals.add(reason)
        return out + self._evaluate(agent, at, strict=False)

    def tick(self, at: float) -> list[Output]:
        """Time passed: open what came due."""
        return self._advance(at, strict=False)

    def next_deadline(self) -> float | None:
        dues = [
            due.due_at
            for agent in self.agents.values()
            for kind, due in self._conditions(agent).items()
            if due is not None and not self._is_open(agent, kind, due)
        ]
        return min(dues, default=None)

    # -- queries --------------------------------------------------------------------------------

    def status(self, agent_id: str, at: float) -> AgentCompliance:
        agent = self._agent(agent_id)
        limit: float | None = None
        over = 0.0
        if agent.state is AgentState.BUSY and agent.authority is not Authority.FORCED:
            rule = self.config.reasons.get(agent.reason)
            if rule is not None:
                limits = [rule.limit_seconds] if rule.limit_seconds is not None else []
                if rule.shift_limit_seconds is not None:
                    limits.append(max(0.0, rule.shift_limit_seconds - agent.shift_used.get(agent.reason, 0)))
                if limits:
                    limit = min(limits)
                    over = max(0.0, at - agent.since - limit)
        phone = self.phones.get(agent.endpoint or "")
        return AgentCompliance(
            limit_seconds=limit,
            over_limit_seconds=over,
            open_incidents=tuple(o.opened for o in agent.open.values()),
            authority=agent.authority if agent.state is AgentState.BUSY else None,
            phone=("UNAVAILABLE" if phone.absent else phone.device) if phone else "",
        )

    def open_incidents(self) -> Iterable[IncidentOpened]:
        for agent in self.agents.values():
            for entry in agent.open.values():
                yield entry.opened

    # -- rules ----------------------------------------------------------------------------------

    def _conditions(self, agent: _Agent) -> dict[IncidentKind, _Due | None]:
        conditions: dict[IncidentKind, _Due | None] = dict.fromkeys(UNAUTHORIZED_BUSY)
        rules = self.config.rules
        if agent.state is AgentState.BUSY and agent.authority is not Authority.FORCED:
            rule = self.config.reasons.get(agent.reason)
            episode = ("busy", agent.since, agent.reason)
            if rule is not None and rule.limit_seconds is not None:
                due = agent.since + rule.limit_seconds
                conditions[IncidentKind.BUSY_OVER_LIMIT] = _Due(episode, agent.reason, due, due)
            if rule is not None and rule.needs_approval and agent.authority is Authority.AGENT:
                start = agent.since
                conditions[IncidentKind.BUSY_UNAPPROVED] = _Due(episode, agent.reason, start, start)
            if rule is not None and rule.shift_limit_seconds is not None:
                left = max(0.0, rule.shift_limit_seconds - agent.shift_used.get(agent.reason, 0.0))
                due = agent.since + left
                conditions[IncidentKind.BUSY_OVER_SHIFT_ALLOWANCE] = _Due(episode, agent.reason, due, due)
        phone = self.phones.get(agent.endpoint) if agent.endpoint else None
        if phone is None:
            return conditions
        if agent.state is AgentState.READY and phone.in_use and phone.in_use_since is not None:
            start = max(agent.since, phone.in_use_since)
            conditions[IncidentKind.PHONE_BUSY_WHILE_READY] = _Due(
                ("phone_busy", start), phone.device, start, start + rules.personal_call_grace
            )
        if agent.state is not AgentState.LOGGED_OUT and phone.absent and phone.absent_since is not None:
            start = max(agent.session_start, phone.absent_since)
            conditions[IncidentKind.LEFT_POST] = _Due(
                ("left_post", start), "unregistered", start, start + rules.left_post_grace
            )
        return conditions

    def _evaluate(self, agent: _Agent, at: float, *, strict: bool) -> list[Output]:
        """Open what is due at ``at`` and close what no longer holds.

        ``strict``: a condition due exactly at ``at`` does not open yet. Used just before a fact that
        may end the condition, so a break of exactly its limit is no incident.
        """
        out: list[Output] = []
        for kind, due in self._conditions(agent).items():
            current = agent.open.get(kind)
            if current is not None and (due is None or due.episode != current.episode):
                del agent.open[kind]
                opened = current.opened
                out.append(
                    IncidentClosed(
                        opened.incident_id, agent.agent_id, kind, opened.reason, opened.started_at, at
                    )
                )
                current = None
            if due is None or current is not None:
                continue
            if due.due_at < at or (due.due_at == at and not strict):
                opened = IncidentOpened(self._new_id(), agent.agent_id, kind, due.reason, due.started_at, at)
                agent.open[kind] = _Open(opened, due.episode)
                out.append(opened)
                if kind is IncidentKind.LEFT_POST and not (
                    agent.state is AgentState.NOT_READY and agent.reason == LEFT_POST
                ):
                    out.append(TakeOutOfService(agent.agent_id, at))
        return out

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

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _is_open(agent: _Agent, kind: IncidentKind, due: _Due) -> bool:
        current = agent.open.get(kind)
        return current is not None and current.episode == due.episode

    @staticmethod
    def _phone_changed(phone: _Phone, was_absent: bool, was_in_use: bool, at: float) -> None:
        if phone.absent and not was_absent:
            phone.absent_since = at
        elif not phone.absent:
            phone.absent_since = None
        if phone.in_use and not was_in_use:
            phone.in_use_since = at
        elif not phone.in_use:
            phone.in_use_since = None

    @staticmethod
    def _resume(agent: _Agent, t: Transition) -> None:
        carried = agent.carried
        if carried is None or t.cause is not Cause.SYSTEM or carried.reason != t.reason:
            return
        agent.carried = None
        agent.authority = Authority.AGENT
        agent.open[IncidentKind.BUSY_UNAPPROVED] = _Open(carried, ("busy", t.at, t.reason))

    @staticmethod
    def _authority(agent: _Agent, t: Transition) -> Authority:
        if t.reason in agent.approvals:
            agent.approvals.discard(t.reason)
            return Authority.APPROVED
        if t.cause is Cause.AGENT:
            return Authority.AGENT
        return Authority.FORCED

    def _agent(self, agent_id: str) -> _Agent:
        return self.agents.setdefault(agent_id, _Agent(agent_id))

    def _phone(self, endpoint: str) -> _Phone:
        return self.phones.setdefault(endpoint, _Phone())


#: States whose length the center limits even without a busy reason's own limit.
LIMITED_STATES = frozenset({AgentState.BUSY, AgentState.NOT_READY, AgentState.LOGGED_IN})


def time_limit(state: AgentState, status: AgentCompliance, default_limit: float) -> float | None:
    """The one "over limit" rule (wallboard and supervisor view): how long the agent may stay.

    Busy with a reason that has limits: what the reason allows now (the smaller of its
    per-occurrence limit and what is left of its shift allowance, see :meth:`ComplianceTracker.status`).
    A busy forced by a supervisor has no limit. Busy without such a reason, not ready, and logged in
    without taking calls: ``default_limit``. Other states are not limited.
    """
    if state is AgentState.BUSY:
        if status.authority is Authority.FORCED:
            return None
        return status.limit_seconds if status.limit_seconds is not None else default_limit
    return default_limit if state in LIMITED_STATES else None
