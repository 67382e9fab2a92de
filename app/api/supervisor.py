"""Supervisors' controls: the live agent list (over-limit first), forced states, busy requests.

A busy reason that needs approval is requested by the agent (``POST /api/v1/busy-requests``) and
approved or denied by a supervisor, who may not decide their own request. Approval puts the agent
in busy with that reason at once (after the current call, if on one).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from anyio import from_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from agents.compliance import time_limit
from agents.presence import AgentState, Cause, PresenceError
from app.api.agents import DistributionDep
from app.api.deps import SessionDep, SettingsDep, WriteSessionDep
from app.db.models import Agent, BusyRequest, BusyRequestStatus, Role
from app.security import AuthUser, CurrentUserDep, authorize_agent, require_roles
from app.services.presence_watch import PresenceWatch

router = APIRouter(tags=["supervisor"])

FORCED = "forced"  # reason recorded when a supervisor forces busy or not ready without one


def get_watch(request: Request) -> PresenceWatch:
    return request.app.state.presence_watch


WatchDep = Annotated[PresenceWatch, Depends(get_watch)]
SupervisorDep = Annotated[AuthUser, Depends(require_roles(Role.supervisor))]


class LiveAgentOut(BaseModel):
    id: str
    name: str
    state: str
    reason: str
    seconds_in_state: float | None
    endpoint: str | None
    phone: str = Field(description="device state of the phone: NOT_INUSE, INUSE, UNAVAILABLE, ...")
    limit_seconds: float | None = Field(
        description="how long the agent may stay in this state (the wallboard's rule, README)"
    )
    over_limit_seconds: float
    authority: str | None = Field(description="busy: agent, approved or forced")
    open_incidents: list[str]


class ForceIn(BaseModel):
    state: Literal["ready", "busy", "not_ready", "logged_out"]
    reason: str = Field("", max_length=64, pattern=r"^(\S(.*\S)?)?$")


class BusyRequestIn(BaseModel):
    agent_id: str = Field(min_length=1, max_length=32)
    reason: str = Field(min_length=1, max_length=64)


class DecisionIn(BaseModel):
    comment: str = Field("", max_length=2000)


class BusyRequestOut(BaseModel):
    id: int
    agent_id: str
    reason: str
    requested_at: datetime
    requested_by: str
    status: str
    decided_at: datetime | None
    decided_by: str | None
    comment: str


def _request_out(row: BusyRequest) -> BusyRequestOut:
    return BusyRequestOut(
        id=row.id,
        agent_id=row.agent_id,
        reason=row.reason,
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        status=row.status.value,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        comment=row.comment,
    )


@router.get("/api/v1/supervisor/agents", response_model=list[LiveAgentOut])
def live_agents(
    user: SupervisorDep, session: SessionDep, service: DistributionDep, watch: WatchDep, settings: SettingsDep
) -> list[LiveAgentOut]:
    """Every logged-in agent with state and time in state; over-limit agents first, longest over first."""
    names: dict[str, str] = {row.id: row.name for row in session.execute(select(Agent.id, Agent.name))}

    def on_loop() -> list[LiveAgentOut]:
        snapshot = service.snapshot()
        now = snapshot.at
        rows = []
        for agent in snapshot.agents:
            if agent.state is AgentState.LOGGED_OUT:
                continue
            status_ = watch.tracker.status(agent.agent_id, now)
            seconds = agent.seconds_in_state(now) if agent.since else None
            limit = time_limit(agent.state, status_, settings.wallboard_busy_limit_seconds)
            over = max(0.0, (seconds or 0.0) - limit) if limit is not None else 0.0
            rows.append(
                LiveAgentOut(
                    id=agent.agent_id,
                    name=agent.name or names.get(agent.agent_id, agent.agent_id),
                    state=agent.state.value,
                    reason=agent.reason,
                    seconds_in_state=round(seconds, 3) if seconds is not None else None,
                    endpoint=agent.endpoint,
                    phone=status_.phone,
                    limit_seconds=limit,
                    over_limit_seconds=round(over, 3),
                    authority=status_.authority.value if status_.authority else None,
                    open_incidents=[i.kind.value for i in status_.open_incidents],
                )
            )
        return rows

    rows = from_thread.run_sync(on_loop)
    rows.sort(key=lambda r: (-r.over_limit_seconds, -len(r.open_incidents), -(r.seconds_in_state or 0), r.id))
    return rows


@router.post("/api/v1/supervisor/agents/{agent_id}/force", status_code=status.HTTP_204_NO_CONTENT)
def force(
    agent_id: str, body: ForceIn, user: SupervisorDep, session: SessionDep, service: DistributionDep
) -> None:
    """Force an agent ready, busy, not ready or logged out (recorded with cause "supervisor")."""
    if session.get(Agent, agent_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown agent {agent_id!r}")
    reason = body.reason or FORCED
    actor = user.username

    def on_loop() -> None:
        match body.state:
            case "ready":
                service.make_ready(agent_id, Cause.SUPERVISOR, actor)
            case "busy":
                service.make_busy(agent_id, reason, Cause.SUPERVISOR, actor)
            case "not_ready":
                service.not_ready(agent_id, reason, Cause.SUPERVISOR, actor)
            case "logged_out":
                service.log_out(agent_id, Cause.SUPERVISOR, actor)

    try:
        from_thread.run_sync(on_loop)
    except PresenceError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.post("/api/v1/busy-requests", response_model=BusyRequestOut, status_code=status.HTTP_201_CREATED)
def request_busy(
    body: BusyRequestIn, user: CurrentUserDep, session: WriteSessionDep, watch: WatchDep
) -> BusyRequestOut:
    """An agent asks to go busy with a reason that needs a supervisor's approval."""
    authorize_agent(body.agent_id, user)
    reason = watch.config.reasons.get(body.reason)
    if reason is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=watch.config.check(body.reason))
    if not reason.needs_approval:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"{body.reason!r} needs no approval: just go busy with it"
        )
    if session.get(Agent, body.agent_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown agent {body.agent_id!r}")
    row = BusyRequest(
        agent_id=body.agent_id,
        reason=body.reason,
        requested_at=datetime.now(UTC),
        requested_by=user.username,
        status=BusyRequestStatus.pending,
        comment="",
    )
    session.add(row)
    session.commit()
    return _request_out(row)


@router.get("/api/v1/busy-requests", response_model=list[BusyRequestOut])
def list_requests(
    user: CurrentUserDep,
    session: SessionDep,
    status_: Annotated[BusyRequestStatus | None, Query(alias="status")] = None,
    agent: str | None = None,
) -> list[BusyRequestOut]:
    """Busy requests, newest first (an agent sees its own)."""
    if not user.has_role(Role.supervisor):
        authorize_agent(agent or user.agent_id, user)
        agent = user.agent_id
    query = select(BusyRequest).order_by(BusyRequest.id.desc()).limit(200)
    if status_ is not None:
        query = query.where(BusyRequest.status == status_)
    if agent is not None:
        query = query.where(BusyRequest.agent_id == agent)
    return [_request_out(r) for r in session.scalars(query)]


def _decide(
    request_id: int, approve: bool, body: DecisionIn, user: AuthUser, session: WriteSessionDep
) -> BusyRequest:
    row = session.get(BusyRequest, request_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown busy request {request_id}")
    if user.agent_id is not None and user.agent_id == row.agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Nobody decides their own busy request")
    decided = session.execute(
        update(BusyRequest)
        .where(BusyRequest.id == request_id, BusyRequest.status == BusyRequestStatus.pending)
        .values(
            status=BusyRequestStatus.approved if approve else BusyRequestStatus.denied,
            decided_at=datetime.now(UTC),
            decided_by=user.username,
            comment=body.comment,
        )
    )
    if decided.rowcount == 0:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"Busy request {request_id} was already decided")
    session.commit()
    session.refresh(row)
    return row


@router.post("/api/v1/busy-requests/{request_id}/approve", response_model=BusyRequestOut)
def approve(
    request_id: int, body: DecisionIn, user: SupervisorDep, session: WriteSessionDep, watch: WatchDep
) -> BusyRequestOut:
    row = _decide(request_id, True, body, user, session)
    from_thread.run_sync(lambda: watch.approve(row.agent_id, row.reason, user.username))
    return _request_out(row)


@router.post("/api/v1/busy-requests/{request_id}/deny", response_model=BusyRequestOut)
def deny(request_id: int, body: DecisionIn, user: SupervisorDep, session: WriteSessionDep) -> BusyRequestOut:
    return _request_out(_decide(request_id, False, body, user, session))
