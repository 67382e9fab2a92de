"""Liveness and readiness probes (unauthenticated, as orchestrators call them; they reveal no data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import SettingsDep
from app.services.writer import StorageWriter

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process lives and serves requests."""
    return {"status": "ok"}


def _storage_check(writer: StorageWriter, stall_seconds: float) -> dict[str, object]:
    """Whether writes go through: the database answering a SELECT is not enough (it may be locked)."""
    stalled = writer.stalled_for()
    if writer.failing:
        status_ = f"writes failing ({writer.last_error}), {writer.backlog} queued"
    elif stalled >= stall_seconds:
        status_ = f"a write has waited {stalled:.0f} s, {writer.backlog} queued"
    else:
        return {"up": True, "status": "up", "backlog": writer.backlog}
    return {"up": False, "status": status_, "backlog": writer.backlog}


@router.get("/readyz")
def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    """Ready when the AMI link is logged in, the database answers and storage writes succeed.

    Says why not otherwise.
    """
    service = request.app.state.distribution
    checks: dict[str, dict[str, object]] = {"ami": {"up": service.link.up, "status": service.link.status}}
    try:
        with request.app.state.db_engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = {"up": True, "status": "up"}
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else ""
        checks["database"] = {"up": False, "status": f"{type(exc).__name__}: {reason}"}
    checks["storage"] = _storage_check(service.writer, settings.storage_stall_seconds)
    ready = all(c["up"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)
