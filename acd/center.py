"""The contact center's core: call distribution and agent presence driven together. No I/O.

The engine decides who gets which call; presence records what each agent is doing and why. This
module keeps them consistent: an agent's request changes whether distribution may offer it calls,
and distribution's facts (ringing, on a call, missed an offer) change the agent's presence. The
service shell feeds it and carries out what comes back; tests and the simulator do the same.
"""

from __future__ import annotations

from collections.abc import Iterable

from acd import commands as cmd
from acd import events as ev
from acd.commands import Activity
from acd.engine import Engine, QueueConfig
from acd.queues_config import DEFAULT_PRIORITY_STEP
from acd.views import AgentProfile, AgentSnapshot, CallSnapshot, CenterSnapshot, QueueSnapshot
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
        self.profiles: dict[str, AgentProfile] = {}  # agents without one serve every queue, no skills
        self._refresh_after_wrap_up: set[str] = set()

    def default_queues(self) -> frozenset[str]:
        return frozenset(self.engine.queues)

    # -- reads ------------------------------------------------------------------------------------

    def profile(self, agent_id: str) -> AgentProfile:
        return self.profiles.get(agent_id) or AgentProfile(agent_id)

    def agent(self, agent_id: str) -> AgentSnapshot:
        """One agent now (a never-seen agent is logged out)."""
        presence = self.presence.agents.get(agent_id)
        if presence is None:
            profile = self.profile(agent_id)
            return AgentSnapshot(agent_id, profile.name, AgentState.LOGGED_OUT, "", 0.0, None, None, profile)
        return self._agent_snapshot(presence.agent_id)

    def agent_at(self, endpoint: str) -> str | None:
        """The agent logged in at this phone, if any."""
        for agent in self.presence.agents.values():
            if agent.endpoint == endpoint and agent.state is not AgentState.LOGGED_OUT:
                return agent.agent_id
        return None

    def snapshot(self, at: float) -> CenterSnapshot:
        """Queues with their unanswered calls, and every agent presence knows of, as of ``at``."""
        engine = self.engine
        calls = engine.call_snapshots()
        by_queue: dict[str, list[CallSnapshot]] = {}
        for call in calls:
            by_queue.setdefault(call.queue, []).append(call)
        queues = tuple(
            QueueSnapshot(config, tuple(by_queue.get(name, ())), engine.staffed(name))
            for name, config in sorted(engine.queues.items())
        )
        agents = tuple(self._agent_snapshot(agent_id) for agent_id in sorted(self.presence.agents))
        return CenterSnapshot(at, queues, calls, agents)

    def _agent_snapshot(self, agent_id: str) -> AgentSnapshot:
        p = self.presence.agents[agent_id]
        profile = self.profile(agent_id)
        pending = p.pending.state if p.pending else None
        return AgentSnapshot(agent_id, profile.name, p.state, p.reason, p.since, p.endpoint, pending, profile)

    # -- profiles ---------------------------------------------------------------------------------

    def set_profiles(
        self, profiles: Iterable[AgentProfile], at: float, *, replace: bool = False
    ) -> list[Output]:
        """Apply agent profiles at once, without dropping a waiting call or an offer in progress.

        An agent taking calls is told its new queues and skills now (a ringing or talking agent
        keeps its call; the new queues apply to its next one); one in wrap-up is told when the
        wrap-up ends, since an ``AgentAvailable`` would end it early. ``replace``: agents not given
        lose their profile (they serve every queue, with no skills).
        """
        new = {p.agent_id: p for p in profiles}
        changed = set(new) | (set(self.profiles) - set(new) if replace else set())
        if replace:
            self.profiles = new
        else:
            self.profiles.update(new)
        out: list[Output] = []
        for agent_id in sorted(changed):
            self._refresh(agent_id, at, out)
        return out

    def remove_profile(self, agent_id: str, at: float) -> list[Output]:
        out: list[Output] = []
        if self.profiles.pop(agent_id, None) is not None:
            self._refresh(agent_id, at, out)
        return out

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
        for agent_id in list(self.presence.agents):
            if not self.profile(agent_id).queues:
                self._refresh(agent_id, at, out)
        return out

    # -- internals --------------------------------------------------------------------------------

    def _refresh(self, agent_id: str, at: float, out: list[Output]) -> None:
        """Tell distribution an agent's queues and skills again, if it takes calls."""
        agent = self.presence.agents.get(agent_id)
        if agent is None or not agent.wants_calls or agent.endpoint is None:
            return  # read from its profile when it next becomes available
        if agent.state is AgentState.WRAP_UP:
            self._refresh_after_wrap_up.add(agent_id)
        else:
            self._follow(self.engine.handle(self._available(agent_id, agent.endpoint, at)), out)

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
        profile = self.profile(agent_id)
        queues = profile.queues or self.default_queues()
        return ev.AgentAvailable(at, agent_id, endpoint, queues, profile.skill_levels(), profile.order)

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
