"""Queues: who is waiting, for how long, and which agents serve them (the managers' live view)."""

from __future__ import annotations

from anyio import from_thread
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from acd.queues_config import ConfigError, Destination
from acd.queues_config import load as load_queues
from agents.presence import AgentState
from app.api.agents import DistributionDep
from app.api.deps import SettingsDep
from app.api.errors import errors, unprocessable
from app.api.paths import segment_except
from app.db.models import Role
from app.security import AuthUser, CurrentUserDep, require_roles
from app.services.distribution import DistributionService

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])


class WaitingCallOut(BaseModel):
    call_id: str
    caller_number: str | None = Field(description="hidden from agents: citizens' numbers are for supervisors")
    priority: int
    state: str = Field(description="waiting, or offered while an agent's phone rings")
    offered_to: str | None
    enqueued_at: float
    wait_seconds: float


class QueueAgentOut(BaseModel):
    id: str
    name: str
    state: str
    reason: str
    seconds_in_state: float


class QueueOut(BaseModel):
    name: str
    strategy: str
    skill: str | None
    service_level: float = Field(
        description="the N of the N-second connection rate: the one setting the KPIs use too"
    )
    ring_timeout: float
    wrap_up: float
    max_wait: float | None
    overflow: str | None = Field(
        description="where calls go after max_wait: queue:x, voicemail:x, callback, message:x"
    )
    when_no_agents: str
    announce_every: float
    calls_waiting: int
    oldest_wait_seconds: float
    calls: list[WaitingCallOut]
    agents: list[QueueAgentOut]


def _destination(destination: Destination | None) -> str | None:
    if destination is None:
        return None
    return f"{destination.kind}:{destination.target}" if destination.target else str(destination.kind)


def _snapshot(service: DistributionService, user: AuthUser, only: str | None) -> list[QueueOut]:
    snapshot = service.snapshot()
    now = snapshot.at
    show_numbers = user.has_role(Role.supervisor)
    queues = []
    for queue in snapshot.queues:
        config = queue.config
        if only is not None and queue.name != only:
            continue
        calls = [
            WaitingCallOut(
                call_id=c.call_id,
                caller_number=c.caller_number if show_numbers else None,
                priority=c.priority,
                state=c.state,
                offered_to=c.offered_to,
                enqueued_at=c.enqueued_at,
                wait_seconds=round(now - c.enqueued_at, 3),
            )
            for c in queue.calls
        ]
        agents = [
            QueueAgentOut(
                id=a.agent_id,
                name=a.name or a.agent_id,
                state=a.state.value,
                reason=a.reason,
                seconds_in_state=round(a.seconds_in_state(now), 3),
            )
            for a in snapshot.agents
            if a.state is not AgentState.LOGGED_OUT and a.profile.can_take(config)
        ]
        queues.append(
            QueueOut(
                name=queue.name,
                strategy=str(config.strategy),
                skill=config.skill,
                service_level=config.service_level,
                ring_timeout=config.ring_timeout,
                wrap_up=config.wrap_up,
                max_wait=config.max_wait,
                overflow=_destination(config.overflow),
                when_no_agents=str(config.when_no_agents),
                announce_every=config.announce_every,
                calls_waiting=len(calls),
                oldest_wait_seconds=max((c.wait_seconds for c in calls), default=0.0),
                calls=calls,
                agents=agents,
            )
        )
    return queues


@router.get("", response_model=list[QueueOut])
def list_queues(user: CurrentUserDep, service: DistributionDep) -> list[QueueOut]:
    return from_thread.run_sync(_snapshot, service, user, None)


#: A queue's name in a path: any segment but the queues' own action (``reload``).
QUEUE_NAME = segment_except("queue_name", "reload")


@router.get(f"/{{name:{QUEUE_NAME}}}", response_model=QueueOut, responses=errors(404))
def get_queue(name: str, user: CurrentUserDep, service: DistributionDep) -> QueueOut:
    found = from_thread.run_sync(_snapshot, service, user, name)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown queue {name!r}")
    return found[0]


class ReloadOut(BaseModel):
    queues: list[str]


@router.post(
    "/reload",
    response_model=ReloadOut,
    dependencies=[Depends(require_roles(Role.admin))],
    responses=errors(409, 422),
)
def reload_queues(service: DistributionDep, settings: SettingsDep) -> ReloadOut:
    """Re-read the queues file and apply it without dropping a waiting call (admins only)."""
    if not settings.queues_file:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="No queues file configured (HOTLINE_QUEUES_FILE)"
        )
    try:
        routing = load_queues(settings.queues_file)
    except (ConfigError, OSError) as exc:
        raise unprocessable(("file", "queues"), f"Queues file rejected: {exc}") from None
    from_thread.run_sync(service.reload_queues, routing.queues)
    return ReloadOut(queues=[q.name for q in routing.queues])
