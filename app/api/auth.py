"""``POST /api/v1/token``: OAuth2 password flow issuing bearer access tokens.

Logins are throttled (``app/services/login_throttle.py``: failures per username and per client
address) and at most ``HOTLINE_LOGIN_CONCURRENT_HASHES`` password checks run at once: each argon2
check takes 64 MiB and a core, so forty parallel logins cannot take a gigabyte or starve the rest.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app.api.deps import SessionDep, SettingsDep
from app.api.errors import errors
from app.db.models import Role
from app.security import create_access_token
from app.services.login_throttle import LoginThrottle
from app.services.users import authenticate
from app.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds
    role: Role
    agent_id: str | None


class LoginLimits:
    """The process' login throttle and its bound on concurrent password checks."""

    def __init__(self, settings: Settings) -> None:
        self.throttle = LoginThrottle(
            settings.login_max_failures_per_user,
            settings.login_max_failures_per_address,
            settings.login_failure_window_seconds,
        )
        self.hashing = asyncio.Semaphore(settings.login_concurrent_hashes)
        self.wait = settings.login_hash_wait_seconds


async def get_login_limits(request: Request, settings: SettingsDep) -> LoginLimits:
    limits: LoginLimits | None = getattr(request.app.state, "login_limits", None)
    if limits is None:  # made on the event loop (this dependency is async-called), once per app
        limits = request.app.state.login_limits = LoginLimits(settings)
    return limits


def _too_many(seconds: float, detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=detail,
        headers={"Retry-After": str(max(1, math.ceil(seconds)))},
    )


@router.post("/token", response_model=TokenOut, responses=errors(401, 413, 429, 503))
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    limits: Annotated[LoginLimits, Depends(get_login_limits)],
) -> TokenOut:
    address = request.client.host if request.client else ""
    wait = limits.throttle.retry_after(form.username, address, time.monotonic())
    if wait is not None:
        raise _too_many(wait, "Too many failed logins: try again later")
    try:
        await asyncio.wait_for(limits.hashing.acquire(), limits.wait)
    except TimeoutError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Too many logins at once: try again",
            headers={"Retry-After": "1"},
        ) from None
    try:
        # Again: failures recorded while this login waited for its turn count too.
        wait = limits.throttle.retry_after(form.username, address, time.monotonic())
        if wait is not None:
            raise _too_many(wait, "Too many failed logins: try again later")
        user = await run_in_threadpool(authenticate, session, form.username, form.password)
    finally:
        limits.hashing.release()
    if user is None:
        limits.throttle.failed(form.username, address, time.monotonic())
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limits.throttle.succeeded(form.username)
    return TokenOut(
        access_token=create_access_token(user, settings),
        expires_in=settings.token_minutes * 60,
        role=user.role,
        agent_id=user.agent_id,
    )
