"""Queue definitions: what each queue does, and the TOML file that defines them.

The file (see ``queues.example.toml`` at the repository root)::

    [routing]
    priority_step = 60            # seconds of waiting one priority point is worth (see acd.engine)

    [defaults]                    # optional: every queue starts from these
    ring_timeout = 15

    [[queue]]
    name = "general"
    strategy = "longest_idle"     # longest_idle | fewest_calls | least_talk_time | round_robin
                                  # | random | top_down
    skill = "mandarin"            # optional: only agents holding this skill (level 1-5) serve it
    tiers = [{ level = 5, after = 0 }, { level = 3, after = 20 }, { level = 1, after = 60 }]
    service_level = 15            # the N of the N-second connection rate (KPIs, metrics, /queues)
    ring_timeout = 15             # seconds an agent's phone rings
    wrap_up = 10                  # after-call work, seconds
    max_wait = 300                # a call waiting this long goes to ``overflow`` (omit: never)
    overflow = "queue:complaints" # queue:<name> | voicemail:<box> | callback | message:<sound>
    when_no_agents = "wait"       # wait | overflow (at once, when no agent serving it is ready)
    announce_every = 30           # seconds between position/wait announcements (0: none)
    max_no_answer = 3             # missed offers in a row before the agent is set busy (0: never)
    busy_delay = 10               # seconds before a busy phone is offered a call again
    reject_delay = 10             # the same for a phone that rejected the call
    handle_time_estimate = 180    # seconds: the wait estimator's handle time until calls are measured

Tiers (mod_callcenter's tier rules): a call first goes only to agents whose level in the queue's
skill is at least the first tier's ``level``; once the call has waited ``after`` seconds the next
tier admits lower levels. Among admitted agents the best level is always tried first. Levels: 5 is
the most proficient, 1 the least. A queue with a skill but no tiers admits every level at once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

MAX_LEVEL = 5
DEFAULT_PRIORITY_STEP = 60.0
DEFAULT_SERVICE_LEVEL = 15.0  # seconds: the national standard's N (GB/T 33358-2016)


class Strategy(StrEnum):
    """Which ready agent of the queue gets the next call."""

    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    LEAST_TALK_TIME = "least_talk_time"
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"
    TOP_DOWN = "top_down"


class DestinationKind(StrEnum):
    QUEUE = "queue"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"  # record a callback request and release the caller
    MESSAGE = "message"  # play a message and hang up


class NoAgents(StrEnum):
    """What a queue does with a call when no agent serving it is ready (or working)."""

    WAIT = "wait"
    OVERFLOW = "overflow"


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an overflowing call goes. ``target``: the queue, mailbox or sound; empty for a callback."""

    kind: DestinationKind
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> Destination:
        kind, _, target = text.partition(":")
        try:
            destination = cls(DestinationKind(kind.strip()), target.strip())
        except ValueError:
            raise ConfigError(f"unknown overflow destination {text!r}") from None
        if destination.kind is not DestinationKind.CALLBACK and not destination.target:
            raise ConfigError(f"overflow destination {text!r} needs a target ({kind}:<name>)")
        return destination

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else str(self.kind)


@dataclass(frozen=True, slots=True)
class Tier:
    """From ``after`` seconds of waiting on, agents with skill level ``level`` or better may take the call."""

    level: int
    after: float


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """How one queue distributes its calls. Times in seconds; ``None`` or 0 disables a timer."""

    name: str
    ring_timeout: float = 15.0
    wrap_up: float = 0.0
    strategy: Strategy = Strategy.LONGEST_IDLE
    skill: str | None = None
    tiers: tuple[Tier, ...] = ()
    service_level: float = DEFAULT_SERVICE_LEVEL
    max_wait: float | None = None
    overflow: Destination | None = None
    when_no_agents: NoAgents = NoAgents.WAIT
    announce_every: float = 0.0
    max_no_answer: int = 3
    busy_delay: float = 10.0
    reject_delay: float = 10.0
    handle_time_estimate: float = 180.0

    def tier_levels(self) -> tuple[Tier, ...]:
        """The tiers in force: a queue without a skill admits everyone (as level ``MAX_LEVEL``)."""
        if self.skill is None:
            return (Tier(MAX_LEVEL, 0.0),)
        return self.tiers or (Tier(1, 0.0),)


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    queues: tuple[QueueConfig, ...]
    priority_step: float = DEFAULT_PRIORITY_STEP


class ConfigError(ValueError):
    """The queue file is not valid; the message says where."""


_FIELDS = {f.name for f in fields(QueueConfig)}


def load(path: str | Path) -> RoutingConfig:
    with open(path, "rb") as f:
        return parse(tomllib.load(f))


def loads(text: str) -> RoutingConfig:
    return parse(tomllib.loads(text))


def parse(data: Mapping[str, Any]) -> RoutingConfig:
    unknown = set(data) - {"routing", "defaults", "queue"}
    if unknown:
        raise ConfigError(f"unknown sections: {sorted(unknown)}")
    defaults = dict(data.get("defaults", {}))
    queues = tuple(_queue({**defaults, **raw}) for raw in data.get("queue", []))
    names = [q.name for q in queues]
    if len(set(names)) != len(names):
        raise ConfigError("queue names must be unique")
    for q in queues:
        if (
            q.overflow is not None
            and q.overflow.kind is DestinationKind.QUEUE
            and q.overflow.target not in names
        ):
            raise ConfigError(f"queue {q.name!r} overflows to unknown queue {q.overflow.target!r}")
    step = float(data.get("routing", {}).get("priority_step", DEFAULT_PRIORITY_STEP))
    if step < 0:
        raise ConfigError("priority_step must not be negative")
    return RoutingConfig(queues, step)


def _queue(raw: Mapping[str, Any]) -> QueueConfig:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("every [[queue]] needs a name")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ConfigError(f"queue {name!r}: unknown keys {sorted(unknown)}")
    values: dict[str, Any] = dict(raw)
    try:
        if "strategy" in values:
            values["strategy"] = Strategy(values["strategy"])
        if "when_no_agents" in values:
            values["when_no_agents"] = NoAgents(values["when_no_agents"])
    except ValueError as exc:
        raise ConfigError(f"queue {name!r}: {exc}") from None
    if "overflow" in values:
        values["overflow"] = Destination.parse(str(values["overflow"]))
    if "tiers" in values:
        values["tiers"] = tuple(Tier(int(t["level"]), float(t.get("after", 0))) for t in values["tiers"])
    for key in ("ring_timeout", "wrap_up", "service_level", "announce_every", "busy_delay", "reject_delay"):
        if key in values:
            values[key] = float(values[key])
    config = QueueConfig(**values)
    _check(config)
    return config


def _check(q: QueueConfig) -> None:
    def fail(why: str) -> None:
        raise ConfigError(f"queue {q.name!r}: {why}")

    if q.ring_timeout <= 0:
        fail("ring_timeout must be positive")
    if q.service_level <= 0:
        fail("service_level must be positive")
    if min(q.wrap_up, q.announce_every, q.busy_delay, q.reject_delay, q.max_no_answer) < 0:
        fail("times and counts must not be negative")
    if q.max_wait is not None and q.max_wait <= 0:
        fail("max_wait must be positive (omit it to wait forever)")
    if (q.max_wait is not None or q.when_no_agents is NoAgents.OVERFLOW) and q.overflow is None:
        fail("max_wait and when_no_agents = 'overflow' need an overflow destination")
    if q.overflow is not None and q.overflow == Destination(DestinationKind.QUEUE, q.name):
        fail("a queue cannot overflow to itself")
    if q.tiers:
        if q.skill is None:
            fail("tiers need a skill")
        if q.tiers[0].after != 0:
            fail("the first tier must start at after = 0")
        for before, after in zip(q.tiers, q.tiers[1:], strict=False):
            if not (after.after > before.after and after.level < before.level):
                fail("each tier must come later and admit a lower level than the one before")
        if not all(1 <= t.level <= MAX_LEVEL for t in q.tiers):
            fail(f"tier levels run from 1 to {MAX_LEVEL}")
    if q.handle_time_estimate <= 0:
        fail("handle_time_estimate must be positive")
