"""Who the wallboard flags as over limit: each busy reason against its own limit."""

from __future__ import annotations

from dataclasses import dataclass, field

from acd.center import ContactCenter
from acd.engine import QueueConfig
from agents.presence import Cause
from app.services.kpi import KpiDefinitions
from app.services.wallboard import build_snapshot
from app.settings import Settings


@dataclass
class Link:
    up: bool = True
    reconnects: int = 0


@dataclass
class View:
    center: ContactCenter
    now: float = 0.0
    link: Link = field(default_factory=Link)

    def clock(self) -> float:
        return self.now


def test_busy_agents_are_measured_against_their_reason_s_limit() -> None:
    settings = Settings(queues=["general"], wallboard_busy_limit_seconds=900)
    view = View(ContactCenter([QueueConfig("general")]))
    for agent, reason in (("1001", "toilet"), ("1002", "meal"), ("1003", "unlisted")):
        view.center.log_in(agent, f"agent{agent}", 0, Cause.AGENT, agent)
        view.center.make_busy(agent, reason, 0, Cause.AGENT, agent)
    view.now = 20 * 60  # 20 minutes busy each
    limits = {"toilet": 600.0, "meal": 2700.0}
    board = build_snapshot(view, settings, KpiDefinitions.from_settings(settings), None, limits)
    flagged = {a["id"]: (a["over_limit"], a["limit_seconds"]) for a in board["agents"]}
    assert flagged == {"1001": (True, 600.0), "1002": (False, 2700.0), "1003": (True, 900)}
    assert [a["id"] for a in board["agents"]][:2] == ["1001", "1003"]  # over limit first
