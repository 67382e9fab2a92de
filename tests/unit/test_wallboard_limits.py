"""Who the wallboard flags as over limit: one rule (``agents.compliance.time_limit``), the same one
the supervisor view uses: the busy reason's own limit, what is left of its shift allowance, else
the wallboard's default limit."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from acd.center import ContactCenter
from acd.engine import QueueConfig
from acd.views import AgentProfile, CenterSnapshot
from agents.busy_reasons import BusyConfig, BusyReason
from agents.compliance import ComplianceTracker
from agents.presence import Cause
from app.services.kpi import KpiDefinitions
from app.services.wallboard import build_snapshot
from app.settings import Settings

IDS = itertools.count(1)
REASONS = BusyConfig(
    {
        "toilet": BusyReason("toilet", "Toilet", limit_seconds=600.0),
        "meal": BusyReason("meal", "Meal", limit_seconds=2700.0),
        "break": BusyReason("break", "Break", limit_seconds=900.0, shift_limit_seconds=1800.0),
    }
)


@dataclass
class Link:
    up: bool = True
    reconnects: int = 0


@dataclass
class View:
    """The distribution service's read side, with the compliance rules following its transitions."""

    center: ContactCenter
    tracker: ComplianceTracker = field(
        default_factory=lambda: ComplianceTracker(REASONS, new_id=lambda: f"i{next(IDS)}")
    )
    now: float = 0.0
    link: Link = field(default_factory=Link)

    def clock(self) -> float:
        return self.now

    def snapshot(self) -> CenterSnapshot:
        return self.center.snapshot(self.now)

    def feed(self, outputs: list) -> None:
        for output in outputs:
            if hasattr(output, "from_state"):
                self.tracker.transition(output, self.center.agent(output.agent_id).endpoint)

    def board(self, settings: Settings) -> dict:
        return build_snapshot(self, settings, KpiDefinitions(), None, self.tracker.status)


def busy(view: View, agent: str, reason: str, at: float) -> None:
    view.feed(view.center.log_in(agent, f"agent{agent}", at, Cause.AGENT, agent))
    view.feed(view.center.make_busy(agent, reason, at, Cause.AGENT, agent))


def test_busy_agents_are_measured_against_their_reason_s_limit() -> None:
    settings = Settings(wallboard_busy_limit_seconds=900)
    view = View(ContactCenter([QueueConfig("general")]))
    for agent, reason in (("1001", "toilet"), ("1002", "meal"), ("1003", "unlisted")):
        busy(view, agent, reason, 0)
    view.now = 20 * 60  # 20 minutes busy each
    board = view.board(settings)
    flagged = {a["id"]: (a["over_limit"], a["limit_seconds"]) for a in board["agents"]}
    assert flagged == {"1001": (True, 600.0), "1002": (False, 2700.0), "1003": (True, 900)}
    assert [a["id"] for a in board["agents"]][:2] == ["1001", "1003"]  # over limit first


def test_the_shift_allowance_counts_on_the_wallboard_as_in_the_compliance_rules() -> None:
    """Defect: the wallboard used the per-occurrence limit only, so an agent past its reason's shift
    allowance was over limit in the supervisor view and not on the wallboard."""
    settings = Settings(wallboard_busy_limit_seconds=3600)
    view = View(ContactCenter([QueueConfig("general")]))
    busy(view, "1001", "break", 0)
    view.feed(view.center.make_ready("1001", 1500, Cause.AGENT, "1001"))  # 25 of the 30 shift minutes
    view.feed(view.center.make_busy("1001", "break", 2000, Cause.AGENT, "1001"))
    view.now = 2000 + 400  # 400 s into the second break: within 15 min, past the 5 min left
    [agent] = view.board(settings)["agents"]
    status = view.tracker.status("1001", view.now)
    assert (agent["limit_seconds"], agent["over_limit"]) == (300.0, True)
    assert status.limit_seconds == 300.0 and status.over_limit_seconds == 100.0


def test_a_busy_forced_by_a_supervisor_is_not_over_limit() -> None:
    settings = Settings(wallboard_busy_limit_seconds=60)
    view = View(ContactCenter([QueueConfig("general")]))
    view.feed(view.center.log_in("1001", "agent1", 0, Cause.AGENT, "1001"))
    view.feed(view.center.make_busy("1001", "toilet", 0, Cause.SUPERVISOR, "sam"))
    view.now = 3600
    [agent] = view.board(settings)["agents"]
    assert (agent["limit_seconds"], agent["over_limit"]) == (None, False)


def test_agents_appear_by_name() -> None:
    view = View(ContactCenter([QueueConfig("general")]))
    view.center.set_profiles([AgentProfile("1001", "王芳")], 0)
    busy(view, "1001", "toilet", 0)
    busy(view, "1002", "toilet", 0)
    names = {a["id"]: a["name"] for a in view.board(Settings())["agents"]}
    assert names == {"1001": "王芳", "1002": "1002"}
