"""``/api/v1/calls``: the call log, for supervisors and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from app.api.deps import PaginationDep, SessionDep, TimeRangeDep
from app.db.models import CallOutcome, Role
from app.security import require_roles
from app.services.calls import CallFilter, list_calls

router = APIRouter(
    prefix="/api/v1/calls", tags=["calls"], dependencies=[Depends(require_roles(Role.supervisor))]
)


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    queue: str
    caller_number: str | None
    priority: int
    enqueued_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    agent_id: str | None
    outcome: CallOutcome
    hangup_cause: str | None
    overflow_to: str | None = None
    overflow_reason: str | None = None


class CallPage(BaseModel):
    items: list[CallOut]
    total: int
    limit: int
    offset: int


@router.get("", response_model=CallPage)
def search_calls(
    session: SessionDep,
    page: PaginationDep,
    period: TimeRangeDep,
    outcome: CallOutcome | None = None,
    queue: Annotated[str | None, Query(max_length=64)] = None,
) -> CallPage:
    """Calls newest first; ``from``/``to`` bound the time the call entered the queue."""
    filters = CallFilter(outcome=outcome, queue=queue, since=period.since, until=period.until)
    result = list_calls(session, filters, limit=page.limit, offset=page.offset)
    return CallPage(
        items=[CallOut.model_validate(c) for c in result.items],
        total=result.total,
        limit=page.limit,
        offset=page.offset,
    )
