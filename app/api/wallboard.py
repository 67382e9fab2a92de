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
from app.db.models import Role
from app.security import AuthUser, current_user, oauth2_scheme, require_roles
from app.services.wallboard import WallboardHub

router = APIRouter(prefix="/api/v1/wallboard", tags=["wallboard"])

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
#: A stream ends after this long and the client reconnects: so its access is checked again (an expired
#: token or a deactivated user stops receiving), and no stream outlives a deployment by much.
MAX_STREAM_SECONDS = 300.0


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


@router.get("", dependencies=[Depends(require_roles(Role.supervisor))])
async def wallboard(request: Request) -> Any:
    """Queues with their waiting calls, agents by state with time in state, today's KPIs against targets."""
    data = await _current(request)
    if data is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="no wallboard data yet")
    return json.loads(data)


@router.get("/stream", dependencies=[Depends(stream_user)], response_class=StreamingResponse)
async def stream(request: Request) -> StreamingResponse:
    """Server-Sent Events: a ``snapshot`` at once, then one after every change."""
    hub: WallboardHub = request.app.state.observability.hub
    queue = hub.connect()
    first = await _current(request)

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            if first is not None:
                yield f"event: snapshot\ndata: {first}\n\n"
            ends = asyncio.get_running_loop().time() + MAX_STREAM_SECONDS
            while (left := ends - asyncio.get_running_loop().time()) > 0:
                try:
                    data = await asyncio.wait_for(queue.get(), min(KEEPALIVE_SECONDS, left))
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield f"event: snapshot\ndata: {data}\n\n"
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
