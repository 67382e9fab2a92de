"""The core's read interface: snapshots of queues, calls and agents. Plain, frozen data.

Read views (the API, the wallboard, metrics, the compliance watch) use these and nothing else of the
core, so they never see a half-updated state or depend on the engine's internals, and a snapshot can
later be serialized and published for a separate API process. A snapshot costs one pass over the
waiting calls and the agents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from acd.queues_config import MAX_LEVEL, QueueConfig
from agents.presence import AgentState


class ProfileError(ValueError):
    """An agent profile that cannot be applied; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """What the center configures per agent: its name, the queues it serves, skills, order.

    ``queues`` empty means every configured queue. ``skills``: (skill, level) pairs, sorted, level 1
    (least proficient) to 5 (most); a mapping is accepted too. ``order`` places the agent for top-down
    and round-robin queues (lowest first).
    """

    agent_id: str
    name: str = ""
    queues: frozenset[str] = frozenset()
    skills: tuple[tuple[str, int], ...] = ()
    order: int = 0

    def __post_init__(self) -> None:
        pairs: Iterable[tuple[str, int]] = (
            self.skills.items() if isinstance(self.skills, Mapping) else self.skills
        )
        object.__setattr__(self, "skills", tuple(sorted(pairs)))
        object.__setattr__(self, "queues", frozenset(self.queues))
        if not self.agent_id or len(self.agent_id) > 32:
            raise ProfileError("id: 1 to 32 characters")
        if len(self.name) > 100:
            raise ProfileError(f"agent {self.agent_id}: name longer than 100 characters")
        if isinstance(self.order, bool) or not isinstance(self.order, int):
            raise ProfileError(f"agent {self.agent_id}: order must be a whole number")
        if len({skill for skill, _ in self.skills}) != len(self.skills):
            raise ProfileError(f"agent {self.agent_id}: a skill is listed twice")
        for skill, level in self.skills:
            if not skill or not isinstance(level, int) or isinstance(level, bool):
                raise ProfileError(f"agent {self.agent_id}: skill {skill!r} needs a whole level")
            if not 1 <= level <= MAX_LEVEL:
                raise ProfileError(
                    f"agent {self.agent_id}: skill {skill!r} level {level} is not 1-{MAX_LEVEL}"
                )
        if any(not q for q in self.queues):
            raise ProfileError(f"agent {self.agent_id}: empty queue name")

    def skill_levels(self) -> dict[str, int]:
        return dict(self.skills)

    def serves(self, queue: str) -> bool:
        """Whether the agent is in the queue (``can_take`` also asks for the queue's skill)."""
        return not self.queues or queue in self.queues

    def can_take(self, config: QueueConfig) -> bool:
        """Whether calls of this queue may be offered to the agent: it serves it, with its skill."""
        return self.serves(config.name) and (
            config.skill is None or self.skill_levels().get(config.skill, 0) > 0
        )


@dataclass(frozen=True, slots=True)
class CallSnapshot:
    """A call not yet answered: waiting, or being offered while an agent's phone rings."""

    call_id: str
    queue: str
    caller_number: str
    priority: int
    state: str  # waiting | offered
    offered_to: str | None
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    config: QueueConfig
    calls: tuple[CallSnapshot, ...]  # in service order
    agents_available: int  # agents taking calls of this queue (ready, ringing, talking, wrap-up)

    @property
    def name(self) -> str:
        return self.config.name

    def oldest_wait(self, now: float) -> float:
        return max((now - c.enqueued_at for c in self.calls), default=0.0)


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """An agent's presence and profile."""

    agent_id: str
    name: str
    state: AgentState
    reason: str
    since: float  # 0: never seen
    endpoint: str | None
    pending: AgentState | None  # state asked for during a call, applied after it
    profile: AgentProfile

    def seconds_in_state(self, now: float) -> float:
        return max(0.0, now - self.since)


@dataclass(frozen=True, slots=True)
class CenterSnapshot:
    at: float
    queues: tuple[QueueSnapshot, ...]  # configured queues, by name
    calls: tuple[CallSnapshot, ...]  # every call not yet answered (any queue), in service order
    agents: tuple[AgentSnapshot, ...]  # agents known to presence, by id

    def queue(self, name: str) -> QueueSnapshot | None:
        return next((q for q in self.queues if q.name == name), None)

    def agent(self, agent_id: str) -> AgentSnapshot | None:
        return next((a for a in self.agents if a.agent_id == agent_id), None)
