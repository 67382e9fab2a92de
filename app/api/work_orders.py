"""``/api/v1/work-orders``: the citizen's appeal recorded on the order each answered call opens.

Agents read and edit the orders of their own calls, until they submit them; supervisors and admins
read and change all. Every change carries the ``version`` it was based on (409 if the order changed
since). Rules: ``app/services/intake.py``; who may do what: ``app/services/work_orders.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import PaginationDep, SessionDep, SettingsDep, TimeRangeDep
from app.api.errors import errors
from app.db.models import Disposition, NonAppealKind, Role, WorkOrderStatus
from app.security import AuthUser, CurrentUserDep, authorize_agent
from app.services import taxonomy as taxonomy_file
from app.services import work_orders as orders
from app.settings import Settings

router = APIRouter(prefix="/api/v1/work-orders", tags=["work-orders"])

#: The largest id the database's integer keys hold: a larger one is a 422, not a database error.
MAX_ID = 2**31 - 1
#: Text without NUL characters (PostgreSQL text cannot store them); newlines and the rest are fine.
NO_NUL = r"^[^\x00]*$"


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int = Field(description="send it back with a change: a stale one gives 409")
    status: WorkOrderStatus
    call_id: str = Field(description="the call that opened it")
    call_ids: list[str] = Field(description="every call that belongs to it, the first one first")
    caller_number: str | None
    queue: str
    agent_id: str | None
    enqueued_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    disposition: Disposition | None
    non_appeal_kind: NonAppealKind | None
    category: str | None
    description: str
    address: str
    district: str | None
    citizen_name: str
    contact_number: str
    urgent: bool
    confidential: bool
    knowledge_article_id: int | None
    department: str | None
    deadline_at: datetime | None
    submitted_at: datetime | None
    submitted_by: str | None
    created_at: datetime
    updated_at: datetime


class OrderPageOut(BaseModel):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int


class IntakeIn(BaseModel):
    """The form's fields; only those sent are changed."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=MAX_ID, description="the version the change is based on")
    category: str | None = Field(
        None, max_length=32, pattern=NO_NUL, description="a code of GET /api/v1/categories"
    )
    description: str | None = Field(None, max_length=4000, pattern=NO_NUL, description="the citizen's matter")
    address: str | None = Field(None, max_length=500, pattern=NO_NUL)
    district: str | None = Field(
        None, max_length=32, pattern=NO_NUL, description="a code of GET /api/v1/districts"
    )
    citizen_name: str | None = Field(None, max_length=100, pattern=NO_NUL)
    contact_number: str | None = Field(None, max_length=64, pattern=r"^[0-9+\-() ]*$")
    urgent: bool | None = None
    confidential: bool | None = Field(None, description="department users never see name and number")
    disposition: Disposition | None = None
    non_appeal_kind: NonAppealKind | None = None
    knowledge_article_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="with a direct answer: the article cited"
    )


def out(view: orders.OrderView) -> OrderOut:
    order, call = view.order, view.call
    fields = {name: getattr(order, name) for name in OrderOut.model_fields if hasattr(order, name)}
    return OrderOut(
        **fields,
        call_id=order.origin_call_id,
        call_ids=list(view.call_ids),
        caller_number=call.caller_number,
        queue=call.queue,
        agent_id=call.agent_id,
        enqueued_at=call.enqueued_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
    )


def load_taxonomy(settings: Settings) -> taxonomy_file.Taxonomy:
    return taxonomy_file.load(settings.taxonomy_file)


@router.get("", response_model=OrderPageOut, responses=errors(401, 403, 422))
def search_orders(
    user: CurrentUserDep,
    session: SessionDep,
    page: PaginationDep,
    period: TimeRangeDep,
    agent: Annotated[str | None, Query(max_length=32, pattern=NO_NUL, description="agent id")] = None,
    caller: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="caller number, exact")
    ] = None,
    call: Annotated[
        str | None, Query(max_length=64, pattern=NO_NUL, description="a call of the order")
    ] = None,
    status_: Annotated[WorkOrderStatus | None, Query(alias="status")] = None,
) -> OrderPageOut:
    """Orders newest first; ``from``/``to`` bound the answer time. Agents see only their own."""
    if not user.has_role(Role.supervisor):
        agent = agent if agent is not None else user.agent_id
        authorize_agent(agent, user)
    filters = orders.OrderFilter(
        agent_id=agent,
        caller_number=caller,
        status=status_,
        call_id=call,
        since=period.since,
        until=period.until,
    )
    result = orders.list_orders(session, filters, limit=page.limit, offset=page.offset)
    return OrderPageOut(
        items=[out(v) for v in result.items], total=result.total, limit=page.limit, offset=page.offset
    )


@router.get("/{order_id}", response_model=OrderOut, responses=errors(401, 403, 404, 422))
def read_order(
    order_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: CurrentUserDep, session: SessionDep
) -> OrderOut:
    view = orders.get_order(session, order_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Work order {order_id} not found")
    authorize_agent(view.agent_id, user)
    return out(view)


def _change(
    order_id: int,
    body: IntakeIn,
    submit: bool,
    user: AuthUser,
    session: SessionDep,
    settings: Settings,
    request: Request,
) -> OrderOut | JSONResponse:
    changes = body.model_dump(exclude_unset=True, exclude={"version"})
    editor = orders.Editor(user.username, user.agent_id, user.has_role(Role.supervisor))
    try:
        view, submitted = orders.change_order(
            session,
            order_id,
            changes,
            version=body.version,
            submit=submit,
            user=editor,
            taxonomy=load_taxonomy(settings),
            timezone=settings.timezone,
            now=datetime.now(UTC),
        )
    except orders.OrderNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except orders.EditForbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=str(exc)) from None
    except orders.StaleOrder as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    except orders.InvalidOrder as exc:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": [e.as_detail() for e in exc.errors]},
        )
    observability = getattr(request.app.state, "observability", None)
    if submitted and observability is not None and view.order.disposition is not None:
        observability.metrics.record_disposition(view.call.queue, view.order.disposition.value)
    return out(view)


@router.patch("/{order_id}", response_model=OrderOut, responses=errors(401, 403, 404, 409, 413, 422))
def save_draft(
    order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: IntakeIn,
    user: CurrentUserDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> Any:
    """Save what is typed so far (the page does it while the call lasts). On a submitted order (the
    center only) the change must keep it complete."""
    return _change(order_id, body, False, user, session, settings, request)


@router.post("/{order_id}/submit", response_model=OrderOut, responses=errors(401, 403, 404, 409, 413, 422))
def submit_order(
    order_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: IntakeIn,
    user: CurrentUserDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> Any:
    """Apply the fields sent and submit: accepted appeals go on to dispatch (department and deadline
    from the category), direct answers and calls that were not appeals are closed at once."""
    return _change(order_id, body, True, user, session, settings, request)
