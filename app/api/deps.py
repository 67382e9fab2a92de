"""Dependencies shared by the API routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from app.db.engine import Sessions
from app.settings import Settings, get_settings

MAX_PAGE_SIZE = 200


def get_settings_dep() -> Settings:
    """The service settings; tests replace this through ``app.dependency_overrides``."""
    return get_settings()


def get_session(request: Request) -> Iterator[Session]:
    """A session from ``app.state.session_factory``, closed after the response.

    Nothing is committed here: handlers that write commit explicitly, read-only ones need not.
    """
    factory: Sessions = request.app.state.session_factory
    with factory() as session:
        yield session


def get_write_session(request: Request) -> Iterator[Session]:
    """A write session (see app/db/engine.py): on SQLite it takes the write lock at its first statement.

    For handlers that read and then write in one transaction: with a plain session that upgrade fails
    with "database is locked" under concurrent writers. Commit explicitly, as with :func:`get_session`.
    """
    factory: Sessions = request.app.state.session_factory
    with factory.writer() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


class Pagination:
    """``limit``/``offset`` query parameters, ``limit`` capped at :data:`MAX_PAGE_SIZE`."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="page size")] = 50,
        offset: Annotated[int, Query(ge=0, description="rows to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


class TimeRange:
    """``from``/``to`` query parameters: an aware ISO 8601 half-open interval ``[from, to)``."""

    def __init__(
        self,
        from_: Annotated[
            AwareDatetime | None,
            Query(alias="from", description="inclusive lower bound, ISO 8601 with offset"),
        ] = None,
        to: Annotated[
            AwareDatetime | None, Query(description="exclusive upper bound, ISO 8601 with offset")
        ] = None,
    ) -> None:
        if from_ is not None and to is not None and from_ >= to:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="'from' must be before 'to'")
        self.since = from_
        self.until = to


PaginationDep = Annotated[Pagination, Depends()]
TimeRangeDep = Annotated[TimeRange, Depends()]
