"""``POST /api/v1/token``: OAuth2 password flow issuing bearer access tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app.api.deps import SessionDep, SettingsDep
from app.db.models import Role
from app.security import create_access_token
from app.services.users import authenticate

router = APIRouter(prefix="/api/v1", tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds
    role: Role
    agent_id: str | None


@router.post("/token", response_model=TokenOut)
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, settings: SettingsDep
) -> TokenOut:
    user = authenticate(session, form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return TokenOut(
        access_token=create_access_token(user, settings),
        expires_in=settings.token_minutes * 60,
        role=user.role,
        agent_id=user.agent_id,
    )
