"""The agent's desk: ``/api/v1/desk`` (who am I, the page's settings, my desk and its push stream)
and the page at ``/agent/``.

The stream is Server-Sent Events: a ``desk`` event at once, then one after every change of the
agent's state, ringing call (the screen pop) or call in hand. Only the agent itself, or a
supervisor, may open an agent's stream. Browsers read it with ``fetch`` so the token stays in the
``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from anyio import from_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from app.api.deps import SettingsDep
from app.api.errors import errors, text
from app.api.wallboard import ACCESS_ENDED, KEEPALIVE_SECONDS, MAX_STREAM_SECONDS
from app.security import (
    AuthUser,
    CurrentUserDep,
    authorize_agent,
    current_user,
    oauth2_scheme,
    token_still_valid,
)

router = APIRouter(prefix="/api/v1/desk", tags=["desk"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGE_DIR = STATIC_DIR / "agent"


class MeOut(BaseModel):
    username: str
    role: str
    agent_id: str | None


class BusyReasonOut(BaseModel):
    key: str = Field(description="what POST /agents/{id}/busy and /busy-requests take")
    name: str
    needs_approval: bool
    limit_seconds: float | None


class DeskConfigOut(BaseModel):
    language: str = Field(description="the pages' default language (HOTLINE_LANGUAGE)")
    timezone: str = Field(description="the center's time zone: the page shows times in it")
    busy_reasons: list[BusyReasonOut]


@router.get("/me", response_model=MeOut, responses=errors(401))
def me(user: CurrentUserDep) -> MeOut:
    """The signed-in user: the page learns its agent id here."""
    return MeOut(username=user.username, role=user.role.value, agent_id=user.agent_id)


@router.get("/config", response_model=DeskConfigOut, responses=errors(401))
def desk_config(user: CurrentUserDep, settings: SettingsDep, request: Request) -> DeskConfigOut:
    reasons = request.app.state.presence_watch.config.reasons
    return DeskConfigOut(
        language=settings.language,
        timezone=settings.timezone,
        busy_reasons=[
            BusyReasonOut(
                key=key, name=r.name, needs_approval=r.needs_approval, limit_seconds=r.limit_seconds
            )
            for key, r in reasons.items()
        ],
    )


def _snapshot(request: Request, agent_id: str) -> dict[str, Any]:
    publisher = request.app.state.desk_publisher
    return from_thread.run_sync(publisher.snapshot, agent_id)


@router.get("/{agent_id}", responses=errors(401, 403))
def desk(agent_id: str, user: CurrentUserDep, request: Request) -> Any:
    """The agent's desk now: state, time in state, wrap-up end, the call ringing, the call in hand."""
    authorize_agent(agent_id, user)
    return _snapshot(request, agent_id)


def stream_user(
    agent_id: str, request: Request, token: Annotated[str, Depends(oauth2_scheme)], settings: SettingsDep
) -> AuthUser:
    """The agent itself or a supervisor; the database session is closed before streaming starts."""
    with request.app.state.session_factory() as session:
        user = current_user(token, settings, session)
    authorize_agent(agent_id, user)
    return user


@router.get(
    "/{agent_id}/stream",
    dependencies=[Depends(stream_user)],
    response_class=StreamingResponse,
    responses={
        **errors(401, 403),
        **text("text/event-stream", "Server-Sent Events: desk, then end"),
    },
)
async def stream(
    agent_id: str, request: Request, token: Annotated[str, Depends(oauth2_scheme)], settings: SettingsDep
) -> StreamingResponse:
    """Server-Sent Events: the agent's ``desk`` at once, then after every change; ``end`` when access ends."""
    hub = request.app.state.desk_hub
    sessions = request.app.state.session_factory
    queue = hub.connect(agent_id)
    first = json.dumps(request.app.state.desk_publisher.snapshot(agent_id), separators=(",", ":"))

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            yield f"event: desk\ndata: {first}\n\n"
            loop = asyncio.get_running_loop()
            ends = loop.time() + MAX_STREAM_SECONDS
            recheck = loop.time() + settings.stream_recheck_seconds
            while (left := ends - (now := loop.time())) > 0:
                if now >= recheck:  # a disabled user or a revoked token ends the stream
                    if not await asyncio.to_thread(token_still_valid, sessions, token, settings):
                        yield ACCESS_ENDED
                        return
                    recheck = now + settings.stream_recheck_seconds
                try:
                    quiet = max(0.0, min(KEEPALIVE_SECONDS, left, recheck - now))
                    data = await asyncio.wait_for(queue.get(), quiet)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if data is None:  # too far behind: the client reconnects and starts afresh
                    return
                yield f"event: desk\ndata: {data}\n\n"
        finally:
            hub.disconnect(agent_id, queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


pages = APIRouter(include_in_schema=False)


@pages.get("/agent/settings.json")
@pages.get("/wallboard/settings.json")
def page_settings(settings: SettingsDep) -> dict[str, str]:
    """What a page needs before anyone signs in: its default language and the center's time zone."""
    return {"language": settings.language, "timezone": settings.timezone}


def mount_page(app: FastAPI) -> None:
    """Serve the agent page (static; it signs the agent in itself), the pages' settings and the files
    they share (``/static``: the translator)."""
    app.include_router(pages)
    app.mount("/agent", StaticFiles(directory=PAGE_DIR, html=True), name="agent")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
