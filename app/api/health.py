"""Liveness and readiness probes (unauthenticated, as orchestrators call them; they reveal no data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process lives and serves requests."""
    return {"status": "ok"}


class CheckOut(BaseModel):
    up: bool
    status: str


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, CheckOut]


@router.get(
    "/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut, "description": "Not ready"}}
)
def readyz(request: Request) -> JSONResponse:
    """Ready when the AMI link is logged in and the database answers; says why not otherwise."""
    service = request.app.state.distribution
    checks: dict[str, dict[str, object]] = {"ami": {"up": service.link.up, "status": service.link.status}}
    try:
        with request.app.state.db_engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"up": True, "status": "up"}
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else ""
        checks["database"] = {"up": False, "status": f"{type(exc).__name__}: {reason}"}
    ready = all(c["up"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
