"""The intake rules of a work order: what a draft may hold, what a submission needs, and its deadline.

Pure functions (no database, time passed in), so the rules are unit-tested on their own and the
API, the page and the reports follow the same ones.

* A draft may be saved with anything typed so far, but a category or district must be one of the
  taxonomy's (``app/services/taxonomy.py``), and a knowledge article only goes with a direct answer.
* Submitting needs a disposition:
  - ``accepted`` (an appeal, goes on to dispatch): category and description;
    it gets the category's department and a handling deadline;
  - ``answered_directly`` (closed at once): category and description, optionally the article cited;
  - ``not_an_appeal`` (closed at once): its kind (silent, wrong number, prank, test).
* Deadlines: ``deadline_hours`` categories are due that many hours after acceptance; others after
  ``deadline_days`` working days (Monday to Friday, in the center's time zone), at the same local time
  of day. An order marked urgent is due within the taxonomy's ``urgent_deadline_hours`` at the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.db.models import Disposition, WorkOrderStatus
from app.services.taxonomy import Category, Taxonomy

#: The fields an agent fills in on the form (and a draft may carry).
INTAKE_FIELDS = (
    "category",
    "description",
    "address",
    "district",
    "citizen_name",
    "contact_number",
    "urgent",
    "confidential",
    "disposition",
    "non_appeal_kind",
    "knowledge_article_id",
)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    kind: str = "invalid"  # unknown | required | not_allowed: pages translate by it

    def as_detail(self) -> dict[str, Any]:
        """The shape of FastAPI's own validation errors, so clients read one format."""
        return {"loc": ["body", self.field], "msg": self.message, "type": self.kind}


def check_draft(values: Mapping[str, Any], taxonomy: Taxonomy) -> list[FieldError]:
    """Errors in the values of an order (as saved so far); empty when the draft may be stored."""
    errors = []
    category = values.get("category")
    if category is not None and taxonomy.category(category) is None:
        errors.append(FieldError("category", f"unknown category {category!r}", "unknown"))
    district = values.get("district")
    if district is not None and district not in taxonomy.district_codes:
        errors.append(FieldError("district", f"unknown district {district!r}", "unknown"))
    disposition = values.get("disposition")
    if values.get("knowledge_article_id") is not None and disposition not in (
        None,
        Disposition.answered_directly,
    ):
        errors.append(
            FieldError(
                "knowledge_article_id",
                "a knowledge article is cited only with a direct answer",
                "not_allowed",
            )
        )
    if values.get("non_appeal_kind") is not None and disposition not in (None, Disposition.not_an_appeal):
        errors.append(
            FieldError("non_appeal_kind", "only an order that is not an appeal has a kind", "not_allowed")
        )
    return errors


def check_submission(values: Mapping[str, Any], taxonomy: Taxonomy) -> list[FieldError]:
    """Errors that stop the order from being submitted (draft rules included)."""
    errors = check_draft(values, taxonomy)
    disposition = values.get("disposition")
    if disposition is None:
        return [*errors, FieldError("disposition", "choose a disposition to submit", "required")]
    if disposition in (Disposition.accepted, Disposition.answered_directly):
        if values.get("category") is None:
            errors.append(FieldError("category", "a category is required", "required"))
        if not (values.get("description") or "").strip():
            errors.append(FieldError("description", "describe the citizen's matter", "required"))
    if disposition is Disposition.accepted and not (values.get("contact_number") or "").strip():
        errors.append(FieldError("contact_number", "an accepted appeal needs a contact number", "required"))
    if disposition is Disposition.not_an_appeal and values.get("non_appeal_kind") is None:
        errors.append(FieldError("non_appeal_kind", "say what kind of call it was", "required"))
    return errors


def status_after(disposition: Disposition) -> WorkOrderStatus:
    """An accepted appeal goes on to dispatch; the others are closed at once."""
    return WorkOrderStatus.accepted if disposition is Disposition.accepted else WorkOrderStatus.closed


def add_working_days(start: datetime, days: int, timezone: str) -> datetime:
    """``days`` working days (Monday to Friday) after ``start``, same local time of day."""
    local = start.astimezone(ZoneInfo(timezone))
    day = local.date()
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return datetime.combine(day, local.timetz().replace(tzinfo=None), ZoneInfo(timezone))


def deadline(
    category: Category, urgent: bool, accepted_at: datetime, timezone: str, urgent_hours: float | None
) -> datetime:
    """When the accepted order is due."""
    if category.deadline_hours is not None:
        due = accepted_at + timedelta(hours=category.deadline_hours)
    else:
        assert category.deadline_days is not None  # the taxonomy guarantees one of the two
        due = add_working_days(accepted_at, category.deadline_days, timezone)
    if urgent and urgent_hours is not None:
        due = min(due, accepted_at + timedelta(hours=urgent_hours))
    return due
