"""What a request may ask for: the one home of every bound on the API's input values.

Values outside these bounds get a 422 with a message instead of reaching the database or the
calendar arithmetic (where they overflowed into 500s): offsets, row ids, instants, days, time zones.
Sizes of whole requests (bodies, login attempts) are settings: see ``app/settings.py``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from app.api.errors import unprocessable

#: Rows a list may skip: deeper than this is a filter's job (and SQL's OFFSET takes 64 bits at most).
MAX_OFFSET = 1_000_000
#: The largest integer id a row can have (INTEGER primary keys are 32-bit in PostgreSQL).
MAX_ROW_ID = 2**31 - 1
#: Instants the API accepts (``from``, ``to``): no hotline record lies outside, and calendar
#: arithmetic on them (local days, report buckets) stays far from the ends of ``datetime``.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
FIRST_DAY, LAST_DAY = EARLIEST.date() + timedelta(days=1), LATEST.date() - timedelta(days=2)
#: IANA zone names: Area/Location[/Sub], as in the tz database.
TZ_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]{0,29}(/[A-Za-z0-9_+\-]{1,30}){0,2}$"
TZ_MAX_LENGTH = 64

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _iso_only(value: Any) -> Any:
    # pydantic reads a number as a Unix time; the API speaks ISO 8601 only (``to=0.5`` is a mistake).
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date and time with offset, e.g. 2026-03-02T09:00:00+08:00")
    return value


def _within_bounds(value: datetime) -> datetime:
    try:
        inside = EARLIEST <= value < LATEST
        value = value.astimezone(UTC)
    except OverflowError:
        inside = False
    if not inside:
        raise ValueError(f"must lie in [{EARLIEST.isoformat()}, {LATEST.isoformat()})")
    return value


def _day_within_bounds(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must lie in [{FIRST_DAY}, {LAST_DAY}]")
    return value


#: An aware instant, given as ISO 8601 text, within [EARLIEST, LATEST), returned in UTC.
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_within_bounds)]
#: A calendar day within [FIRST_DAY, LAST_DAY].
Day = Annotated[date, AfterValidator(_day_within_bounds)]
#: Query/path parameters for the above.
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
TimeZoneQuery = Annotated[
    str, Query(max_length=TZ_MAX_LENGTH, pattern=TZ_PATTERN, description="IANA time zone, e.g. Asia/Shanghai")
]


def time_zone(name: str, loc: tuple[str, ...] = ("query", "tz")) -> ZoneInfo:
    """The zone called ``name``; 422 (validation-error shape) if there is none."""
    if len(name) > TZ_MAX_LENGTH or not re.fullmatch(TZ_PATTERN, name):
        raise unprocessable(loc, f"not an IANA time zone name: {name[:TZ_MAX_LENGTH]!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise unprocessable(loc, f"Unknown time zone {name!r}") from None
