"""``/api/v1/tickets``: the older, read-only view of work orders (``/api/v1/work-orders``).

Agents see their own, supervisors and admins all. Kept so that existing clients go on working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel

from app.api.deps import PaginationDep, SessionDep, TimeRangeDep
from app.db.models import Role, TicketStatus
from app.security import CurrentUserDep, authorize_agent
from app.services import work_orders as orders

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


class TicketOut(BaseModel):
    id: int
    call_id: str
    caller_number: str | None
    queue: str
    agent_id: str
    enqueued_at: datetime
    answered_at: datetime
    ended_at: datetime | None
    status: TicketStatus
    created_at: datetime

    @classmethod
    def of(cls, view: orders.OrderView) -> TicketOut:
        call = view.call
        return cls(
            id=view.order.id,
            call_id=view.order.origin_call_id,
            caller_number=call.caller_number,
            queue=call.queue,
            agent_id=call.agent_id or "",
            enqueued_at=call.enqueued_at,
            answered_at=call.answered_at or view.order.created_at,
            ended_at=call.ended_at,
            status=view.order.status,
            created_at=view.order.created_at,
        )


class TicketPage(BaseModel):
    items: list[TicketOut]
    total: int
    limit: int
    offset: int


@router.get("", response_model=TicketPage)
def search_tickets(
    user: CurrentUserDep,
    session: SessionDep,
    page: PaginationDep,
    period: TimeRangeDep,
    agent: Annotated[str | None, Query(max_length=32, description="agent id")] = None,
    caller: Annotated[str | None, Query(max_length=64, description="caller number, exact")] = None,
    status_: Annotated[TicketStatus | None, Query(alias="status")] = None,
) -> TicketPage:
    """Tickets newest first; ``from``/``to`` bound the answer time. Agents are limited to their own."""
    if not user.has_role(Role.supervisor):
        if agent is None:
            agent = user.agent_id
        authorize_agent(agent, user)
    filters = orders.OrderFilter(
        agent_id=agent, caller_number=caller, status=status_, since=period.since, until=period.until
    )
    result = orders.list_orders(session, filters, limit=page.limit, offset=page.offset)
    return TicketPage(
        items=[TicketOut.of(v) for v in result.items],
        total=result.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{ticket_id}", response_model=TicketOut)
def read_ticket(
    ticket_id: Annotated[int, Path(ge=1)], user: CurrentUserDep, session: SessionDep
) -> TicketOut:
    view = orders.get_order(session, ticket_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Ticket {ticket_id} not found")
    authorize_agent(view.agent_id, user)
    return TicketOut.of(view)
