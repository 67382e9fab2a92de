"""The managers' wallboard: ``GET /api/v1/wallboard``, its push stream, and the page at ``/wallboard/``.

The stream is Server-Sent Events (``text/event-stream``): every ``snapshot`` event carries the whole
board as JSON (see ``app.services.wallboard``). It works in any API process: snapshots arrive over
Redis from the process running distribution. Browsers read it with ``fetch`` so that the access
token travels in the ``Authorization`` header, never in a URL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from fastapi.staticfiles import StaticFiles

from app.api.deps import SettingsDep
from app.api.errors import errors, text
from app.db.models import Role
from app.security import AuthUser, current_user, oauth2_scheme, require_roles, token_still_valid
from app.services.wallboard import WallboardHub

router = APIRouter(prefix="/api/v1/wallboard", tags=["wallboard"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
#: A stream ends after this long and the client reconnects, so no stream outlives a deployment by much.
#: Its access is re-checked every ``HOTLINE_STREAM_RECHECK_SECONDS`` meanwhile: a deactivated user,
#: a revoked or an expired token gets an ``end`` event and the stream closes.
MAX_STREAM_SECONDS = 300.0
ACCESS_ENDED = 'event: end\ndata: {"reason": "access ended: sign in again"}\n\n'


def stream_user(
    request: Request, token: Annotated[str, Depends(oauth2_scheme)], settings: SettingsDep
) -> AuthUser:
    """Like the usual supervisor check, but the database session is closed before streaming starts."""
    with request.app.state.session_factory() as session:
        user = current_user(token, settings, session)
    if not user.has_role(Role.supervisor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Requires role supervisor or higher")
    return user


async def _current(request: Request) -> str | None:
    """The freshest snapshot: built here if this process runs distribution, else the last published."""
    observability = request.app.state.observability
    if observability.publisher is not None:
        return json.dumps(observability.publisher.snapshot(), separators=(",", ":"))
    hub: WallboardHub = observability.hub
    return await hub.fetch_latest()


@router.get("", dependencies=[Depends(require_roles(Role.supervisor))], responses=errors(503))
async def wallboard(request: Request) -> Any:
    """Queues with their waiting calls, agents by state with time in state, today's KPIs against targets."""
    data = await _current(request)
    if data is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="no wallboard data yet")
    return json.loads(data)


@router.get(
    "/stream",
    dependencies=[Depends(stream_user)],
    response_class=StreamingResponse,
    responses=text("text/event-stream", "Server-Sent Events: snapshot, then end"),
)
async def stream(
    request: Request, token: Annotated[str, Depends(oauth2_scheme)], settings: SettingsDep
) -> StreamingResponse:
    """Server-Sent Events: a ``snapshot`` at once, then one after every change; ``end`` when access ends."""
    hub: WallboardHub = request.app.state.observability.hub
    queue = hub.connect()
    first = await _current(request)
    sessions = request.app.state.session_factory

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        try:
            yield "retry: 1000\n\n"
            if first is not None:
                yield f"event: snapshot\ndata: {first}\n\n"
            ends = loop.time() + MAX_STREAM_SECONDS
            sent = loop.time()
            recheck = sent + settings.stream_recheck_seconds
            while (left := ends - (now := loop.time())) > 0:
                if now >= recheck:
                    if not await asyncio.to_thread(token_still_valid, sessions, token, settings):
                        yield ACCESS_ENDED
                        return
                    recheck = now + settings.stream_recheck_seconds
                if now - sent >= KEEPALIVE_SECONDS:
                    yield ": keepalive\n\n"
                    sent = now
                try:
                    quiet = max(0.0, min(left, recheck - now, sent + KEEPALIVE_SECONDS - now))
                    data = await asyncio.wait_for(queue.get(), quiet)
                except TimeoutError:
                    continue
                yield f"event: snapshot\ndata: {data}\n\n"
                sent = loop.time()
        finally:
            hub.disconnect(queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def mount_page(app: FastAPI) -> None:
    """Serve the wallboard page (static; it asks for a supervisor's login itself)."""
    app.mount("/wallboard", StaticFiles(directory=STATIC_DIR, html=True), name="wallboard")
