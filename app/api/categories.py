"""``/api/v1/categories`` and ``/api/v1/districts``: the intake taxonomy (``HOTLINE_TAXONOMY_FILE``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import SettingsDep
from app.api.errors import errors
from app.api.work_orders import load_taxonomy
from app.security import CurrentUserDep

router = APIRouter(prefix="/api/v1", tags=["work-orders"])


class CategoryOut(BaseModel):
    code: str
    zh: str
    en: str
    department: str | None = Field(description="where its orders are normally dispatched")
    deadline_days: int | None = Field(description="handling deadline in working days")
    deadline_hours: float | None = Field(description="or, for urgent matters, in hours")
    parent: str | None
    children: list[CategoryOut]


class CategoriesOut(BaseModel):
    urgent_deadline_hours: float | None
    categories: list[CategoryOut]


class DistrictOut(BaseModel):
    code: str
    zh: str
    en: str


@router.get("/categories", response_model=CategoriesOut, responses=errors(401))
def categories(user: CurrentUserDep, settings: SettingsDep) -> Any:
    """The category tree, each with its department and deadline (inherited ones filled in)."""
    taxonomy = load_taxonomy(settings)
    return {
        "urgent_deadline_hours": taxonomy.urgent_deadline_hours,
        "categories": [c.as_dict() for c in taxonomy.roots],
    }


@router.get("/districts", response_model=list[DistrictOut], responses=errors(401))
def districts(user: CurrentUserDep, settings: SettingsDep) -> Any:
    return [{"code": d.code, "zh": d.zh, "en": d.en} for d in load_taxonomy(settings).districts]
