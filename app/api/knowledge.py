"""``/api/v1/knowledge``: the knowledge base. Everyone signed in reads and searches it; supervisors
and admins write it. Search: ``app/services/knowledge.py`` (Chinese-aware, no search server)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from app.api.deps import PaginationDep, SessionDep, SettingsDep
from app.api.errors import errors
from app.api.work_orders import MAX_ID, NO_NUL, load_taxonomy
from app.db.models import KnowledgeArticle, Role, WorkOrder
from app.security import AuthUser, CurrentUserDep, require_roles
from app.services import knowledge

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])

SupervisorDep = Annotated[AuthUser, Depends(require_roles(Role.supervisor))]


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    body: str = Field(min_length=1, max_length=20000, pattern=NO_NUL)
    category: str | None = Field(
        None, max_length=32, pattern=NO_NUL, description="a code of GET /api/v1/categories"
    )
    department: str | None = Field(None, max_length=100, pattern=NO_NUL)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _period(self) -> ArticleIn:
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValueError("valid_from must be before valid_until")
        return self


class ArticleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
    category: str | None
    department: str | None
    valid_from: datetime | None
    valid_until: datetime | None
    updated_by: str
    created_at: datetime
    updated_at: datetime
    score: float | None = Field(None, description="search relevance, higher is better")


class ArticleList(BaseModel):
    items: list[ArticleOut]


def _check_category(body: ArticleIn, settings: SettingsDep) -> None:
    if body.category is not None and load_taxonomy(settings).category(body.category) is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "category"],
                    "msg": f"unknown category {body.category!r}",
                    "type": "unknown",
                }
            ],
        )


@router.get("", response_model=ArticleList, responses=errors(401, 422))
def find_articles(
    user: CurrentUserDep,
    session: SessionDep,
    page: PaginationDep,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="full-text query (Chinese or not)")
    ] = None,
    category: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    valid: Annotated[bool, Query(description="only articles valid now")] = True,
) -> ArticleList:
    """Search (``q``, best match first) or list (newest first) the articles."""
    at = datetime.now(UTC) if valid else None
    if q:
        hits = knowledge.search(session, q, valid_at=at, category=category, limit=page.limit)
        items = [ArticleOut.model_validate(h.article).model_copy(update={"score": h.score}) for h in hits]
    else:
        rows = knowledge.list_articles(
            session, valid_at=at, category=category, limit=page.limit, offset=page.offset
        )
        items = [ArticleOut.model_validate(a) for a in rows]
    return ArticleList(items=items)


def _article(session: SessionDep, article_id: int) -> KnowledgeArticle:
    article = session.get(KnowledgeArticle, article_id)
    if article is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Knowledge article {article_id} not found")
    return article


@router.get("/{article_id}", response_model=ArticleOut, responses=errors(401, 404, 422))
def read_article(
    article_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: CurrentUserDep, session: SessionDep
) -> Any:
    return ArticleOut.model_validate(_article(session, article_id))


@router.post(
    "",
    response_model=ArticleOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 413, 422),
)
def create_article(body: ArticleIn, user: SupervisorDep, session: SessionDep, settings: SettingsDep) -> Any:
    _check_category(body, settings)
    now = datetime.now(UTC)
    article = KnowledgeArticle(
        **body.model_dump(),
        search_text=knowledge.search_text(body.title, body.body),
        updated_by=user.username,
        created_at=now,
        updated_at=now,
    )
    session.add(article)
    session.commit()
    return ArticleOut.model_validate(article)


@router.put("/{article_id}", response_model=ArticleOut, responses=errors(401, 403, 404, 413, 422))
def replace_article(
    article_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ArticleIn,
    user: SupervisorDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Any:
    _check_category(body, settings)
    article = _article(session, article_id)
    for name, value in body.model_dump().items():
        setattr(article, name, value)
    article.search_text = knowledge.search_text(body.title, body.body)
    article.updated_by, article.updated_at = user.username, datetime.now(UTC)
    session.commit()
    return ArticleOut.model_validate(article)


@router.delete(
    "/{article_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409, 422),
)
def delete_article(
    article_id: Annotated[int, Path(ge=1, le=MAX_ID)], user: SupervisorDep, session: SessionDep
) -> Response:
    """Delete an article no work order cites (a cited one: end its validity instead)."""
    article = _article(session, article_id)
    if session.scalar(select(WorkOrder.id).where(WorkOrder.knowledge_article_id == article_id).limit(1)):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="Work orders cite this article: set valid_until instead of deleting it",
        )
    session.delete(article)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
