"""``/api/v1/reports``: KPIs computed from the call records, for supervisors and admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from app.api.deps import SessionDep, SettingsDep, TimeRangeDep
from app.db.models import Role
from app.security import require_roles
from app.services.kpi import (
    MAX_SPAN,
    Interval,
    KpiDefinitions,
    KpiReport,
    KpiTotals,
    decided_calls,
    kpi_report,
    report_csv,
    today_bounds,
)
from app.services.routing import routing_config
from app.settings import Settings

router = APIRouter(
    prefix="/api/v1/reports", tags=["reports"], dependencies=[Depends(require_roles(Role.supervisor))]
)


class KpiOut(BaseModel):
    offered: int
    answered: int
    answered_in_service_level: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    tickets_opened: int
    accepted: int
    answered_directly: int
    not_an_appeal: int
    connection_rate: float | None
    service_level_rate: float | None
    abandonment_rate: float | None
    asa_seconds: float | None
    aht_seconds: float | None
    acceptance_rate: float | None

    @classmethod
    def of(cls, totals: KpiTotals) -> KpiOut:
        return cls.model_validate(totals.as_dict())


class KpiRowOut(KpiOut):
    start: datetime
    end: datetime


class KpiReportOut(BaseModel):
    model_config = {"json_schema_extra": {"description": "definitions: README, 'KPI definitions'"}}

    start: datetime
    end: datetime
    interval: Interval
    timezone: str
    queue: str | None
    definitions: dict[str, object]
    rows: list[KpiRowOut]
    total: KpiOut


def kpi_definitions(request: Request, settings: Settings) -> KpiDefinitions:
    """The definitions in force: the running service's (they follow a queues reload), else the file's."""
    observability = getattr(request.app.state, "observability", None)
    if observability is not None:
        return observability.definitions
    return KpiDefinitions.from_settings(settings, routing_config(settings).queues)


@router.get(
    "/kpi",
    response_model=KpiReportOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
def kpi(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    period: TimeRangeDep,
    interval: Interval = Interval.DAY,
    queue: Annotated[str | None, Query(max_length=64)] = None,
    format: Literal["json", "csv"] = "json",
) -> KpiReportOut | PlainTextResponse:
    """KPIs per local hour or day of calls that entered a queue in ``[from, to)`` (default: today).

    A call counts in the period it entered the queue, once answered or abandoned; the last row of
    the CSV is the total.
    """
    today, tomorrow = today_bounds(datetime.now(UTC), settings.timezone)
    since = period.since or today
    until = period.until or (tomorrow if since < tomorrow else None)
    if until is None or since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="'from' must be before 'to'")
    if until - since > MAX_SPAN[interval]:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"at most {MAX_SPAN[interval].days} days per report with interval={interval.value}",
        )
    definitions = kpi_definitions(request, settings)
    report = kpi_report(
        decided_calls(session, since, until, queue), definitions, since, until, interval, settings.timezone
    )
    if format == "csv":
        name = f"kpi-{since.astimezone(ZoneInfo(settings.timezone)).date()}-{interval.value}.csv"
        return PlainTextResponse(
            report_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return _out(report, queue, definitions.describe())


def _out(report: KpiReport, queue: str | None, definitions: dict[str, object]) -> KpiReportOut:
    return KpiReportOut(
        start=report.since,
        end=report.until,
        interval=report.interval,
        timezone=report.timezone,
        queue=queue,
        definitions=definitions,
        rows=[KpiRowOut(start=r.start, end=r.end, **r.totals.as_dict()) for r in report.rows],
        total=KpiOut.of(report.total),
    )
