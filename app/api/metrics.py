"""``/metrics``: the Prometheus exposition of the process that runs call distribution.

Scrapers authenticate with ``Authorization: Bearer <HOTLINE_METRICS_TOKEN>`` (Prometheus'
``authorization.credentials_file``); a supervisor's access token works too.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import SettingsDep
from app.api.errors import errors, text
from app.db.models import Role
from app.security import current_user

router = APIRouter(tags=["observability"])


def metrics_access(
    request: Request, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """401 without a bearer token; the metrics token or a supervisor's access token pass."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="Not authenticated", headers={"WWW-Authenticate": "Bearer"}
        )
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return
    with request.app.state.session_factory() as session:
        user = current_user(token, settings, session)
    if not user.has_role(Role.supervisor):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="Requires role supervisor or higher")


@router.get(
    "/metrics",
    dependencies=[Depends(metrics_access)],
    response_class=Response,
    responses={**text(CONTENT_TYPE_LATEST, "Prometheus text exposition"), **errors(401, 403)},
)
async def metrics(request: Request) -> Response:
    # async on purpose: the live gauges read the core, which lives on the event loop.
    body = request.app.state.observability.metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
