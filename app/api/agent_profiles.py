"""Agent profiles: name, queues served, skills with levels, order, phone PIN (supervisors, admins).

Every change is stored first, then applied to the running core at once (no waiting call or ringing
offer is dropped). A file import (CSV or TOML, see :mod:`app.services.agent_profiles`) is all or
nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from anyio import from_thread, to_thread
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from acd.views import AgentProfile, ProfileError
from app.api.deps import SessionDep, SettingsDep
from app.api.errors import errors, unprocessable
from app.api.paths import segment_except
from app.db.models import Agent, Role
from app.security import AuthUser, require_roles
from app.services.agent_profiles import (
    ProfileImportError,
    ProfileRecord,
    check_pin_format,
    load_profiles,
    parse_import,
    save_profiles,
    to_profile,
)
from app.services.profile_sync import announce_change

router = APIRouter(prefix="/api/v1/agent-profiles", tags=["agent profiles"])
SupervisorDep = Annotated[AuthUser, Depends(require_roles(Role.supervisor))]

MAX_IMPORT_BYTES = 4 * 1024 * 1024
AGENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$"


class ProfileIn(BaseModel):
    model_config = ConfigDict(strict=True)  # "order": false is not 0

    name: str = Field("", max_length=100, description="shown on the wallboard and supervisor views")
    queues: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=200, description="queues served; empty: every queue"
    )
    skills: dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[int, Field(ge=1, le=5)]] = (
        Field(default_factory=dict, max_length=200, description="skill -> level, 1 (least) to 5 (best)")
    )
    order: int = Field(0, ge=-1_000_000, le=1_000_000, description="top-down / round-robin place")
    pin: str | None = Field(None, description="4-8 digits for feature-code login; omitted: unchanged")


class ProfileOut(BaseModel):
    id: str
    name: str
    queues: list[str]
    skills: dict[str, int]
    order: int
    has_pin: bool


class ImportOut(BaseModel):
    imported: int


def _out(profile: AgentProfile, has_pin: bool) -> ProfileOut:
    return ProfileOut(
        id=profile.agent_id,
        name=profile.name,
        queues=sorted(profile.queues),
        skills=profile.skill_levels(),
        order=profile.order,
        has_pin=has_pin,
    )


def apply_live(request: Request, settings: SettingsDep, profiles: list[AgentProfile]) -> None:
    """Hand stored profiles to the core in this process, or announce them to the one running it."""
    service = getattr(request.app.state, "distribution", None)
    if service is not None:
        from_thread.run_sync(lambda: service.set_profiles(profiles))
    else:
        announce_change(settings.redis_url, settings.profiles_channel)


@router.get("", response_model=list[ProfileOut])
def list_profiles(user: SupervisorDep, session: SessionDep) -> list[ProfileOut]:
    pins = {row.id: row.pin_hash is not None for row in session.query(Agent.id, Agent.pin_hash)}
    return [_out(p, pins[p.agent_id]) for p in load_profiles(session)]


#: An agent id in a path: any segment but the profiles' own action (``import``).
AGENT_SEGMENT = segment_except("profile_agent", "import")


@router.get(f"/{{agent_id:{AGENT_SEGMENT}}}", response_model=ProfileOut, responses=errors(404))
def get_profile(agent_id: str, user: SupervisorDep, session: SessionDep) -> ProfileOut:
    row = session.get(Agent, agent_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown agent {agent_id!r}")
    return _out(to_profile(row), row.pin_hash is not None)


@router.put(f"/{{agent_id:{AGENT_SEGMENT}}}", response_model=ProfileOut)
def put_profile(
    agent_id: Annotated[str, Path(pattern=AGENT_ID)],
    body: ProfileIn,
    user: SupervisorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> ProfileOut:
    """Create or replace an agent's profile; it applies to the running core at once."""
    try:
        if body.pin:
            check_pin_format(body.pin)
        profile = AgentProfile(agent_id, body.name.strip(), frozenset(body.queues), body.skills, body.order)
    except ProfileError as exc:
        raise unprocessable(("body",), str(exc)) from None
    [saved] = save_profiles(session, [ProfileRecord(profile, body.pin)])
    apply_live(request, settings, [saved])
    row = session.get(Agent, agent_id)
    return _out(saved, row is not None and row.pin_hash is not None)


@router.delete(
    f"/{{agent_id:{AGENT_SEGMENT}}}/pin", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
def clear_pin(agent_id: str, user: SupervisorDep, session: SessionDep) -> None:
    """Remove the agent's PIN: it can then log in only through the API, not from a phone."""
    row = session.get(Agent, agent_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Unknown agent {agent_id!r}")
    row.pin_hash = None
    session.commit()


@router.post(
    "/import",
    response_model=ImportOut,
    responses=errors(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/toml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_profiles(
    request: Request,
    user: SupervisorDep,
    settings: SettingsDep,
    format: Annotated[Literal["csv", "toml"], Query(description="the file's format")] = "csv",
) -> ImportOut:
    """Import many agents from a CSV or TOML body (README, *Agent profiles*); all or nothing."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_IMPORT_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, detail=f"import files are at most {MAX_IMPORT_BYTES} bytes"
            )
    try:
        records = parse_import(body.decode("utf-8"), format)
    except UnicodeDecodeError:
        raise unprocessable(("body",), "the file is not UTF-8") from None
    except (ProfileImportError, ProfileError) as exc:
        raise unprocessable(("body",), str(exc)) from None
    factory = request.app.state.session_factory

    def store() -> list[AgentProfile]:
        with factory() as session:
            return save_profiles(session, records)

    saved = await to_thread.run_sync(store)
    service = getattr(request.app.state, "distribution", None)
    if service is not None:
        service.set_profiles(saved)  # async handler: already on the event loop
    else:
        await to_thread.run_sync(announce_change, settings.redis_url, settings.profiles_channel)
    return ImportOut(imported=len(saved))
