"""Agents: presence, and the requests an agent (or a supervisor) makes: log in, ready, busy, log out."""

from __future__ import annotations

from typing import Annotated

from anyio import from_thread
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from acd.views import AgentSnapshot
from agents.presence import Cause, PresenceError
from app.api.deps import SessionDep
from app.api.errors import errors, unprocessable
from app.db.models import Agent, Role
from app.security import AuthUser, CurrentUserDep, authorize_agent
from app.services.distribution import DistributionService

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

ENDPOINT_PATTERN = r"^(?:(?:PJSIP|SIP)/)?[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class AgentOut(BaseModel):
    id: str
    name: str
    state: str
    reason: str
    since: float | None = Field(description="when the agent entered this state, epoch seconds")
    seconds_in_state: float | None
    endpoint: str | None
    pending: str | None = Field(description="state requested during a call, applied after it")


class LoginIn(BaseModel):
    endpoint: str = Field(
        pattern=ENDPOINT_PATTERN,
        description="the PJSIP endpoint (extension) of the agent's phone, e.g. agent1",
    )


class BusyIn(BaseModel):
    reason: str = Field(
        "",
        max_length=64,
        pattern=r"^(\S(.*\S)?)?$",
        description="a configured busy reason (HOTLINE_BUSY_REASONS_FILE); empty only if allowed",
    )


def get_distribution(request: Request) -> DistributionService:
    return request.app.state.distribution


DistributionDep = Annotated[DistributionService, Depends(get_distribution)]


def _out(agent: AgentSnapshot, now: float, stored_name: str = "") -> AgentOut:
    seconds = agent.seconds_in_state(now) if agent.since > 0 else None
    return AgentOut(
        id=agent.agent_id,
        name=agent.name or stored_name or agent.agent_id,
        state=agent.state.value,
        reason=agent.reason,
        since=agent.since if seconds is not None else None,
        seconds_in_state=round(seconds, 3) if seconds is not None else None,
        endpoint=agent.endpoint,
        pending=agent.pending.value if agent.pending else None,
    )


def _agent_row(session: SessionDep, agent_id: str) -> Agent:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown agent {agent_id!r}")
    return agent


def _cause(user: AuthUser, agent_id: str) -> Cause:
    return Cause.AGENT if user.agent_id == agent_id else Cause.SUPERVISOR


@router.get("", response_model=list[AgentOut])
def list_agents(user: CurrentUserDep, session: SessionDep, service: DistributionDep) -> list[AgentOut]:
    """All agents with their state (an agent sees only itself)."""
    query = select(Agent).order_by(Agent.id)
    if not user.has_role(Role.supervisor):
        query = query.where(Agent.id == user.agent_id)
    rows = [(a.id, a.name) for a in session.scalars(query)]
    return from_thread.run_sync(lambda: [_out(service.agent(i), service.clock(), name) for i, name in rows])


@router.get("/{agent_id}", response_model=AgentOut, responses=errors(404))
def get_agent(agent_id: str, user: CurrentUserDep, session: SessionDep, service: DistributionDep) -> AgentOut:
    authorize_agent(agent_id, user)
    name = _agent_row(session, agent_id).name
    return from_thread.run_sync(lambda: _out(service.agent(agent_id), service.clock(), name))


def _act(
    agent_id: str, user: AuthUser, session: SessionDep, service: DistributionDep, action: str, **kwargs: str
) -> AgentOut:
    authorize_agent(agent_id, user)
    name = _agent_row(session, agent_id).name
    cause = _cause(user, agent_id)

    def on_loop() -> AgentOut:
        # The core lives on the event loop; requests are applied there, one at a time.
        getattr(service, action)(agent_id, cause=cause, actor=user.username, **kwargs)
        return _out(service.agent(agent_id), service.clock(), name)

    try:
        return from_thread.run_sync(on_loop)
    except PresenceError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None


@router.post("/{agent_id}/login", response_model=AgentOut, responses=errors(404, 409))
def log_in(
    agent_id: str, body: LoginIn, user: CurrentUserDep, session: SessionDep, service: DistributionDep
) -> AgentOut:
    """Log in at a phone. The agent takes no calls until it says ready."""
    authorize_agent(agent_id, user)  # before saying who holds the phone
    _agent_row(session, agent_id)
    endpoint = body.endpoint.split("/", 1)[-1]
    holder = from_thread.run_sync(service.agent_at, endpoint)
    if holder is not None and holder != agent_id:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"Endpoint {endpoint!r} is in use by agent {holder!r}"
        )
    return _act(agent_id, user, session, service, "log_in", endpoint=endpoint)


@router.post("/{agent_id}/ready", response_model=AgentOut, responses=errors(404, 409))
def make_ready(
    agent_id: str, user: CurrentUserDep, session: SessionDep, service: DistributionDep
) -> AgentOut:
    return _act(agent_id, user, session, service, "make_ready")


@router.post("/{agent_id}/busy", response_model=AgentOut, responses=errors(404, 409))
def make_busy(
    agent_id: str,
    body: BusyIn,
    user: CurrentUserDep,
    session: SessionDep,
    service: DistributionDep,
    request: Request,
) -> AgentOut:
    """Busy with a configured reason. A reason that needs approval takes effect too, and is logged as
    unapproved until a supervisor approves it (better request it: ``POST /api/v1/busy-requests``)."""
    refused = request.app.state.presence_watch.config.check(body.reason)
    if refused is not None:
        raise unprocessable(("body", "reason"), refused)
    return _act(agent_id, user, session, service, "make_busy", reason=body.reason)


@router.post("/{agent_id}/logout", response_model=AgentOut, responses=errors(404, 409))
def log_out(agent_id: str, user: CurrentUserDep, session: SessionDep, service: DistributionDep) -> AgentOut:
    return _act(agent_id, user, session, service, "log_out")
