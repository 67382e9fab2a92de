"""The compliance log: incidents (JSON or CSV), agents' state history, the daily agent report.

Incidents are never edited or deleted here: the only write is a supervisor's acknowledgement, which
is appended to the hash-chained log (see app/services/compliance.py). Agents read their own records.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from agents.compliance import IncidentKind
from agents.presence import AgentState
from app.api.deps import PaginationDep, TimeRangeDep
from app.api.errors import errors, text
from app.api.limits import Day, TimeZoneQuery, time_zone
from app.db.models import Role
from app.security import AuthUser, CurrentUserDep, authorize_agent, refuse_own, require_roles
from app.services.compliance import (
    ComplianceStore,
    IncidentFilter,
    IncidentView,
    incidents_csv,
)

router = APIRouter(prefix="/api/v1/compliance", tags=["compliance"])

MAX_EXPORT = 10_000


def get_store(request: Request) -> ComplianceStore:
    return ComplianceStore(request.app.state.session_factory)


def get_now() -> datetime:
    """The current time; tests replace it through ``app.dependency_overrides``."""
    return datetime.now(UTC)


StoreDep = Annotated[ComplianceStore, Depends(get_store)]
NowDep = Annotated[datetime, Depends(get_now)]
SupervisorDep = Annotated[AuthUser, Depends(require_roles(Role.supervisor))]


class AcknowledgementOut(BaseModel):
    by: str
    at: datetime
    comment: str


class IncidentOut(BaseModel):
    id: str
    agent_id: str
    kind: str
    reason: str = Field(description="the busy reason, or the phone's state")
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: float = Field(description="unauthorized time; so far, while open")
    open: bool
    acknowledgements: list[AcknowledgementOut]


class AcknowledgeIn(BaseModel):
    comment: str = Field(min_length=1, max_length=2000)


class TransitionOut(BaseModel):
    at: datetime
    from_state: str
    to_state: str
    reason: str
    cause: str
    actor: str


class DailyOut(BaseModel):
    agent_id: str
    day: date
    time_zone: str
    start: datetime
    end: datetime
    logins: int
    logged_in_seconds: float
    seconds_by_state: dict[str, float]
    busy_seconds_by_reason: dict[str, float]
    not_ready_seconds_by_reason: dict[str, float]
    incidents: dict[str, dict[str, float]] = Field(description="kind -> count and unauthorized seconds")


class ChainOut(BaseModel):
    ok: bool
    entries: int
    head_hash: str
    problem: str


def _incident_out(view: IncidentView) -> IncidentOut:
    return IncidentOut(
        id=view.id,
        agent_id=view.agent_id,
        kind=view.kind,
        reason=view.reason,
        started_at=view.started_at,
        ended_at=view.ended_at,
        duration_seconds=view.duration_seconds,
        open=view.open,
        acknowledgements=[
            AcknowledgementOut(by=a.by, at=a.at, comment=a.comment) for a in view.acknowledgements
        ],
    )


def _own_scope(user: AuthUser, agent: str | None) -> str | None:
    """An agent's queries are limited to itself; supervisors see everyone."""
    if user.has_role(Role.supervisor):
        return agent
    authorize_agent(agent or user.agent_id, user)
    return user.agent_id


@router.get(
    "/incidents", response_model=list[IncidentOut], responses=text("text/csv", "JSON, or CSV with format=csv")
)
def list_incidents(
    user: CurrentUserDep,
    store: StoreDep,
    now: NowDep,
    page: PaginationDep,
    window: TimeRangeDep,
    agent: str | None = None,
    kind: IncidentKind | None = None,
    open_only: Annotated[bool, Query(alias="open", description="only incidents still open")] = False,
    fmt: Annotated[
        Literal["json", "csv"], Query(alias="format", description="csv: a download of all matches")
    ] = "json",
) -> list[IncidentOut] | Response:
    """Incidents that began in ``[from, to)``, newest first."""
    flt = IncidentFilter(
        agent_id=_own_scope(user, agent),
        kind=kind.value if kind else None,
        since=window.since,
        until=window.until,
        open_only=open_only,
    )
    if fmt == "csv":
        views = store.incidents(flt, now, limit=MAX_EXPORT)
        return Response(
            incidents_csv(views),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="incidents.csv"'},
        )
    return [_incident_out(v) for v in store.incidents(flt, now, page.limit, page.offset)]


@router.get("/incidents/{incident_id}", response_model=IncidentOut, responses=errors(404))
def get_incident(incident_id: str, user: CurrentUserDep, store: StoreDep, now: NowDep) -> IncidentOut:
    view = store.incident(incident_id, now)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown incident {incident_id!r}")
    authorize_agent(view.agent_id, user)
    return _incident_out(view)


@router.post(
    "/incidents/{incident_id}/acknowledgements",
    response_model=IncidentOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(404),
)
def acknowledge(
    incident_id: str, body: AcknowledgeIn, user: SupervisorDep, store: StoreDep, now: NowDep
) -> IncidentOut:
    """A supervisor's acknowledgement with a comment, appended to the log (the incident is unchanged)."""
    view = store.incident(incident_id, now)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown incident {incident_id!r}")
    refuse_own(user, view.agent_id, detail="Nobody acknowledges their own incident")
    acknowledged = store.acknowledge(incident_id, user.username, body.comment, now)
    assert acknowledged is not None
    return _incident_out(acknowledged)


@router.get("/agents/{agent_id}/history", response_model=list[TransitionOut])
def history(
    agent_id: str, user: CurrentUserDep, store: StoreDep, page: PaginationDep, window: TimeRangeDep
) -> list[TransitionOut]:
    """Every state change of the agent, newest first: who, when, from, to, why."""
    authorize_agent(agent_id, user)
    rows = store.history(agent_id, window.since, window.until, page.limit, page.offset)
    return [
        TransitionOut(
            at=r.at,
            from_state=r.from_state,
            to_state=r.to_state,
            reason=r.reason,
            cause=r.cause,
            actor=r.actor,
        )
        for r in rows
    ]


@router.get("/daily", response_model=list[DailyOut])
def daily(
    user: CurrentUserDep,
    store: StoreDep,
    now: NowDep,
    day: Annotated[Day, Query(alias="date", description="YYYY-MM-DD, local to tz")],
    tz: TimeZoneQuery = "Asia/Shanghai",
    agent: str | None = None,
) -> list[DailyOut]:
    """Per agent: time logged in, ready, on call, wrap-up, busy by reason, not ready, incidents."""
    zone = time_zone(tz)
    scope = _own_scope(user, agent)
    rows = store.daily(day, zone, now, [scope] if scope else None)
    return [
        DailyOut(
            agent_id=r.agent_id,
            day=day,
            time_zone=tz,
            start=r.start,
            end=r.end,
            logins=r.totals.logins,
            logged_in_seconds=round(r.totals.logged_in, 3),
            seconds_by_state={
                s.value: round(v, 3) for s, v in r.totals.by_state.items() if s is not AgentState.LOGGED_OUT
            },
            busy_seconds_by_reason={k: round(v, 3) for k, v in r.totals.busy_by_reason.items()},
            not_ready_seconds_by_reason={k: round(v, 3) for k, v in r.totals.not_ready_by_reason.items()},
            incidents=r.incidents,
        )
        for r in rows
    ]


@router.get("/verify", response_model=ChainOut)
def verify(user: SupervisorDep, store: StoreDep) -> ChainOut:
    """Recompute the incident log's hash chain; keep ``head_hash`` somewhere else to compare later."""
    check = store.verify()
    return ChainOut(ok=check.ok, entries=check.entries, head_hash=check.head_hash, problem=check.problem)
