"""Agent presence: what each agent is doing, who made it so, and since when. No I/O, no clock.

Requests (log in, ready, busy, log out) come from the agent, a supervisor or the system; activity
(ringing, on a call, wrap-up, idle) comes from call distribution. ``Presence.apply`` returns the
``Transition`` records that follow, each one stating who caused it: the raw material for the
compliance log.

A request that cannot take effect at once (busy while on a call) is kept as *pending* and applied when
the call's work is done; the agent stops getting new calls from the moment of the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    LOGGED_IN = "logged_in"  # at the post, not taking calls yet
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BUSY = "busy"  # chosen by the agent (or forced by a supervisor), with a reason
    NOT_READY = "not_ready"  # set by the system: missed calls, phone unreachable


class Cause(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    SYSTEM = "system"


# States that distribution drives; the agent's own choice waits until they end.
IN_CALL_WORK = frozenset({AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP})


class PresenceError(Exception):
    """A request that makes no sense in the agent's current state (for example ready while logged out)."""


@dataclass(frozen=True, slots=True)
class Transition:
    agent_id: str
    at: float
    from_state: AgentState
    to_state: AgentState
    reason: str
    cause: Cause
    actor: str  # who asked: a user name, or "acd" / "system"


@dataclass(frozen=True, slots=True)
class Pending:
    state: AgentState
    reason: str
    cause: Cause
    actor: str


@dataclass(slots=True)
class AgentPresence:
    agent_id: str
    state: AgentState = AgentState.LOGGED_OUT
    since: float = 0.0
    reason: str = ""
    endpoint: str | None = None
    pending: Pending | None = None

    @property
    def wants_calls(self) -> bool:
        """Whether distribution may offer this agent new calls once it is idle."""
        if self.state is AgentState.READY:
            return True
        return self.state in IN_CALL_WORK and self.pending is None


class Presence:
    """Presence of all agents."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentPresence] = {}

    def get(self, agent_id: str) -> AgentPresence:
        return self.agents.setdefault(agent_id, AgentPresence(agent_id))

    # -- requests from people ---------------------------------------------------------------------

    def log_in(self, agent_id: str, endpoint: str, at: float, cause: Cause, actor: str) -> list[Transition]:
        agent = self.get(agent_id)
        if agent.state in IN_CALL_WORK:
            raise PresenceError("cannot change the extension during a call")
        agent.endpoint = endpoint
        if agent.state is not AgentState.LOGGED_OUT:
            return []
        return self._move(agent, AgentState.LOGGED_IN, at, "", cause, actor)

    def make_ready(self, agent_id: str, at: float, cause: Cause, actor: str) -> list[Transition]:
        agent = self._logged_in(agent_id)
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            agent.pending = None  # ready again after this call
            return []
        if agent.state is AgentState.READY:
            return []
        return self._move(agent, AgentState.READY, at, "", cause, actor)

    def make_busy(self, agent_id: str, reason: str, at: float, cause: Cause, actor: str) -> list[Transition]:
        agent = self._logged_in(agent_id)
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            agent.pending = Pending(AgentState.BUSY, reason, cause, actor)
            return []
        if agent.state is AgentState.BUSY and agent.reason == reason:
            return []
        return self._move(agent, AgentState.BUSY, at, reason, cause, actor)

    def log_out(self, agent_id: str, at: float, cause: Cause, actor: str) -> list[Transition]:
        agent = self.get(agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            return []
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            agent.pending = Pending(AgentState.LOGGED_OUT, "", cause, actor)
            return []
        transitions = self._move(agent, AgentState.LOGGED_OUT, at, "", cause, actor)
        agent.endpoint = None
        return transitions

    # -- facts from distribution and the phone ----------------------------------------------------

    def activity(self, agent_id: str, state: AgentState, at: float) -> list[Transition]:
        """Distribution says the agent is ringing, on a call, in wrap-up, or idle (``READY``)."""
        agent = self.get(agent_id)
        if state is AgentState.READY:
            if agent.state not in IN_CALL_WORK:
                return []  # already moved on (busy, not ready, logged out)
            if agent.pending is not None:
                pending, agent.pending = agent.pending, None
                transitions = self._move(
                    agent, pending.state, at, pending.reason, pending.cause, pending.actor
                )
                if pending.state is AgentState.LOGGED_OUT:
                    agent.endpoint = None
                return transitions
            return self._move(agent, AgentState.READY, at, "", Cause.SYSTEM, "acd")
        if agent.state is state or agent.state is AgentState.LOGGED_OUT:
            return []
        if state is AgentState.WRAP_UP and agent.pending is not None:
            return self.activity(agent_id, AgentState.READY, at)  # the agent already chose what comes next
        return self._move(agent, state, at, "", Cause.SYSTEM, "acd")

    def not_ready(self, agent_id: str, reason: str, at: float, cause: Cause, actor: str) -> list[Transition]:
        """The system (or a supervisor) takes the agent out of distribution: missed call, phone gone."""
        agent = self.get(agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            return []
        agent.pending = None
        return self._move(agent, AgentState.NOT_READY, at, reason, cause, actor)

    # -- internals --------------------------------------------------------------------------------

    def _logged_in(self, agent_id: str) -> AgentPresence:
        agent = self.get(agent_id)
        if agent.state is AgentState.LOGGED_OUT:
            raise PresenceError("the agent is not logged in")
        return agent

    @staticmethod
    def _move(
        agent: AgentPresence, to: AgentState, at: float, reason: str, cause: Cause, actor: str
    ) -> list[Transition]:
        transition = Transition(agent.agent_id, at, agent.state, to, reason, cause, actor)
        agent.state, agent.since, agent.reason = to, at, reason
        return [transition]
