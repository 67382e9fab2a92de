"""The contact center's core: call distribution and agent presence driven together. No I/O.

The engine decides who gets which call; presence records what each agent is doing and why. This
module keeps them consistent: an agent's request changes whether distribution may offer it calls,
and distribution's facts (ringing, on a call, missed an offer) change the agent's presence. The
service shell feeds it and carries out what comes back; tests and the simulator do the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from acd import commands as cmd
from acd import events as ev
from acd.commands import Activity
from acd.engine import Engine, QueueConfig
from acd.queues_config import DEFAULT_PRIORITY_STEP
from agents.presence import AgentState, Cause, Presence, Transition

Output = cmd.Command | Transition

_ACTIVITY_STATE = {
    Activity.RINGING: AgentState.RINGING,
    Activity.ON_CALL: AgentState.ON_CALL,
    Activity.WRAP_UP: AgentState.WRAP_UP,
    Activity.IDLE: AgentState.READY,
}

MISSED_CALL = "missed_call"
NO_ANSWER_LIMIT = "no_answer_limit"


class ContactCenter:
    def __init__(
        self, queues: Iterable[QueueConfig], *, priority_step: float = DEFAULT_PRIORITY_STEP
    ) -> None:
        self.engine = Engine({q.name: q for q in queues}, priority_step=priority_step)
        self.presence = Presence()
        self.agent_queues: dict[str, frozenset[str]] = {}
        self.agent_skills: dict[str, Mapping[str, int]] = {}  # skill -> level 1-5, per agent
        self.agent_order: dict[str, int] = {}  # place for top-down / round robin, per agent
        self._refresh_after_wrap_up: set[str] = set()

    def default_queues(self) -> frozenset[str]:
        return frozenset(self.engine.queues)

    # -- requests ---------------------------------------------------------------------------------

    def log_in(self, agent_id: str, endpoint: str, at: float, cause: Cause, actor: str) -> list[Output]:
        return self._request(agent_id, at, self.presence.log_in(agent_id, endpoint, at, cause, actor))

    def make_ready(self, agent_id: str, at: float, cause: Cause, actor: str) -> list[Output]:
        return self._request(agent_id, at, self.presence.make_ready(agent_id, at, cause, actor))

    def make_busy(self, agent_id: str, reason: str, at: float, cause: Cause, actor: str) -> list[Output]:
        return self._request(agent_id, at, self.presence.make_busy(agent_id, reason, at, cause, actor))

    def log_out(self, agent_id: str, at: float, cause: Cause, actor: str) -> list[Output]:
        return self._request(agent_id, at, self.presence.log_out(agent_id, at, cause, actor))

    def not_ready(self, agent_id: str, reason: str, at: float, cause: Cause, actor: str) -> list[Output]:
        return self._request(agent_id, at, self.presence.not_ready(agent_id, reason, at, cause, actor))

    # -- telephony events -------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> list[Output]:
        out: list[Output] = []
        self._follow(self.engine.handle(event), out)
        return out

    def next_deadline(self) -> float | None:
        return self.engine.next_deadline()

    def reconfigure(self, queues: Iterable[QueueConfig], at: float) -> list[Output]:
        """Apply reloaded queue definitions (no call is dropped, see ``acd.engine``).

        Agents without a queue list of their own serve every configured queue, so the ones taking
        calls are told the new set at once; an agent in wrap-up is told when it ends, because a new
        ``AgentAvailable`` would end its wrap-up early.
        """
        out: list[Output] = []
        self._follow(self.engine.handle(ev.QueuesReconfigured(at, tuple(queues))), out)
        for agent_id, agent in self.presence.agents.items():
            if agent_id in self.agent_queues or not agent.wants_calls or agent.endpoint is None:
                continue
            if agent.state is AgentState.WRAP_UP:
                self._refresh_after_wrap_up.add(agent_id)
            else:
                self._follow(self.engine.handle(self._available(agent_id, agent.endpoint, at)), out)
        return out

    # -- internals --------------------------------------------------------------------------------

    def _request(self, agent_id: str, at: float, transitions: list[Transition]) -> list[Output]:
        """After any request, tell distribution whether the agent now takes calls.

        ``AgentAvailable`` is repeated on purpose: it ends a wrap-up early when the agent says ready.
        """
        out: list[Output] = list(transitions)
        agent = self.presence.get(agent_id)
        if agent.wants_calls and agent.endpoint is not None:
            event: ev.Event = self._available(agent_id, agent.endpoint, at)
        else:
            event = ev.AgentUnavailable(at, agent_id)
        self._follow(self.engine.handle(event), out)
        return out

    def _available(self, agent_id: str, endpoint: str, at: float) -> ev.AgentAvailable:
        queues = self.agent_queues.get(agent_id) or self.default_queues()
        skills = self.agent_skills.get(agent_id, {})
        return ev.AgentAvailable(at, agent_id, endpoint, queues, skills, self.agent_order.get(agent_id, 0))

    def _follow(self, commands: list[cmd.Command], out: list[Output]) -> None:
        """Pass the engine's output on, and let presence follow what distribution did."""
        for command in commands:
            out.append(command)
            match command:
                case cmd.AgentActivityChanged(agent_id=agent_id, activity=activity, at=at):
                    before = self.presence.get(agent_id).wants_calls
                    out.extend(self.presence.activity(agent_id, _ACTIVITY_STATE[activity], at))
                    agent = self.presence.get(agent_id)
                    if before and not agent.wants_calls:
                        # may overflow waiting calls (no agent left): their commands must go out too
                        self._follow(self.engine.handle(ev.AgentUnavailable(at, agent_id)), out)
                    elif activity is Activity.IDLE and agent_id in self._refresh_after_wrap_up:
                        self._refresh_after_wrap_up.discard(agent_id)
                        if agent.wants_calls and agent.endpoint is not None:
                            event = self._available(agent_id, agent.endpoint, at)
                            self._follow(self.engine.handle(event), out)
                case cmd.AgentMissedOffer(agent_id=agent_id, at=at):
                    out.extend(self.presence.not_ready(agent_id, MISSED_CALL, at, Cause.SYSTEM, "acd"))
                case cmd.AgentExhaustedNoAnswer(agent_id=agent_id, at=at):
                    if self.presence.get(agent_id).state is not AgentState.LOGGED_OUT:
                        out.extend(
                            self.presence.make_busy(agent_id, NO_ANSWER_LIMIT, at, Cause.SYSTEM, "acd")
                        )
