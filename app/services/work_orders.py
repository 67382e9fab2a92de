"""Work orders: read them with the call they came from, and edit them by the intake rules.

Who may change an order: the agent who answered its call, while it is open (a draft); once submitted,
only the center (supervisors, admins). Every change names the ``version`` it was based on; an older
one is refused (:class:`StaleOrder`), so two people never silently overwrite each other. The rules
on the values themselves are in ``app/services/intake.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.db.models import Call, Disposition, KnowledgeArticle, WorkOrder, WorkOrderCall, WorkOrderStatus
from app.services import intake
from app.services.taxonomy import Taxonomy


class OrderNotFound(LookupError):
    pass


class EditForbidden(PermissionError):
    pass


class StaleOrder(Exception):
    """The order changed since the version the edit was based on."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the work order changed since version read (now version {current}); reload it")
        self.current = current


class InvalidOrder(ValueError):
    def __init__(self, errors: Sequence[intake.FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order with its originating call (the call's numbers stay on the call)."""

    order: WorkOrder
    call: Call
    call_ids: tuple[str, ...]

    @property
    def agent_id(self) -> str | None:
        return self.call.agent_id


@dataclass(frozen=True, slots=True)
class OrderFilter:
    agent_id: str | None = None
    caller_number: str | None = None
    status: WorkOrderStatus | None = None
    call_id: str | None = None  # any call of the order
    since: datetime | None = None  # answer time of the originating call >= since
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: list[OrderView]
    total: int


def _base() -> Select[Any]:
    return select(WorkOrder, Call).join(Call, Call.id == WorkOrder.origin_call_id)


def _calls_of(session: Session, order_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {i: [] for i in order_ids}
    if order_ids:
        rows = session.execute(
            select(WorkOrderCall.work_order_id, WorkOrderCall.call_id)
            .where(WorkOrderCall.work_order_id.in_(order_ids))
            .order_by(WorkOrderCall.linked_at, WorkOrderCall.call_id)
        )
        for order_id, call_id in rows:
            found[order_id].append(call_id)
    return {k: tuple(v) for k, v in found.items()}


def _views(session: Session, rows: Sequence[Any]) -> list[OrderView]:
    calls = _calls_of(session, [order.id for order, _ in rows])
    return [OrderView(order, call, calls[order.id] or (call.id,)) for order, call in rows]


def list_orders(session: Session, filters: OrderFilter, *, limit: int, offset: int) -> OrderPage:
    """Orders matching ``filters``, newest answer first."""
    stmt = _base()
    if filters.agent_id is not None:
        stmt = stmt.where(Call.agent_id == filters.agent_id)
    if filters.caller_number is not None:
        stmt = stmt.where(Call.caller_number == filters.caller_number)
    if filters.status is not None:
        stmt = stmt.where(WorkOrder.status == filters.status)
    if filters.call_id is not None:
        linked = select(WorkOrderCall.work_order_id).where(WorkOrderCall.call_id == filters.call_id)
        stmt = stmt.where(WorkOrder.id.in_(linked))
    if filters.since is not None:
        stmt = stmt.where(Call.answered_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(Call.answered_at < filters.until)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(
        stmt.order_by(Call.answered_at.desc(), WorkOrder.id.desc()).limit(limit).offset(offset)
    ).all()
    return OrderPage(_views(session, rows), total)


def get_order(session: Session, order_id: int) -> OrderView | None:
    row = session.execute(_base().where(WorkOrder.id == order_id)).first()
    return None if row is None else _views(session, [row])[0]


def order_of_call(session: Session, call_id: str) -> int | None:
    return session.scalar(select(WorkOrderCall.work_order_id).where(WorkOrderCall.call_id == call_id))


def previous_orders(
    session: Session, number: str, *, exclude_call: str | None, limit: int
) -> list[OrderView]:
    """The caller's earlier orders, newest first (for the screen pop)."""
    if not number:
        return []
    stmt = _base().where(Call.caller_number == number)
    if exclude_call is not None:
        stmt = stmt.where(Call.id != exclude_call)
    rows = session.execute(stmt.order_by(Call.answered_at.desc(), WorkOrder.id.desc()).limit(limit)).all()
    return _views(session, rows)


@dataclass(frozen=True, slots=True)
class Editor:
    """Who changes an order: ``center`` for supervisors and admins, else the agent ``agent_id``."""

    username: str
    agent_id: str | None
    center: bool


def _may_edit(user: Editor, view: OrderView) -> None:
    if user.center:
        return
    if user.agent_id is None or view.agent_id != user.agent_id:
        raise EditForbidden("Agents may only edit the work orders of their own calls")
    if view.order.status is not WorkOrderStatus.open:
        raise EditForbidden("This work order was submitted; only the center may change it now")


def change_order(
    session: Session,
    order_id: int,
    changes: Mapping[str, Any],
    *,
    version: int,
    submit: bool,
    user: Editor,
    taxonomy: Taxonomy,
    timezone: str,
    now: datetime,
) -> tuple[OrderView, bool]:
    """Apply ``changes`` (a draft save, or a submission) and commit; returns the order and whether it
    was submitted just now. Raises :class:`OrderNotFound`, :class:`EditForbidden`, :class:`StaleOrder`,
    :class:`InvalidOrder`."""
    view = get_order(session, order_id)
    if view is None:
        raise OrderNotFound(f"Work order {order_id} not found")
    _may_edit(user, view)
    order = view.order
    if order.version != version:
        raise StaleOrder(order.version)
    values = {name: getattr(order, name) for name in intake.INTAKE_FIELDS}
    values.update(changes)
    if values.get("disposition") is not None:
        values["disposition"] = Disposition(values["disposition"])
    was_open = order.status is WorkOrderStatus.open
    final = submit or not was_open  # a submitted order stays a complete one
    errors = (intake.check_submission if final else intake.check_draft)(values, taxonomy)
    article = values.get("knowledge_article_id")
    if article is not None and session.get(KnowledgeArticle, article) is None:
        errors.append(
            intake.FieldError("knowledge_article_id", f"unknown knowledge article {article}", "unknown")
        )
    if errors:
        raise InvalidOrder(errors)
    for name, value in changes.items():
        setattr(order, name, value)
    if final:
        disposition = values["disposition"]
        order.status = intake.status_after(disposition)
        category = taxonomy.category(values["category"]) if values.get("category") else None
        if disposition is Disposition.accepted and category is not None:
            accepted_at = order.submitted_at or now
            order.department = category.department
            order.deadline_at = intake.deadline(
                category, bool(values["urgent"]), accepted_at, timezone, taxonomy.urgent_deadline_hours
            )
        else:
            order.department, order.deadline_at = None, None
        if was_open:
            order.submitted_at, order.submitted_by = now, user.username
    order.updated_at = now
    try:
        session.commit()
    except StaleDataError:
        session.rollback()
        current = session.scalar(select(WorkOrder.version).where(WorkOrder.id == order_id)) or version
        raise StaleOrder(current) from None
    fresh = get_order(session, order_id)
    assert fresh is not None
    return fresh, final and was_open
