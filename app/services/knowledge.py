"""The knowledge base agents answer from: articles, and full-text search that works for Chinese.

Chinese has no spaces between words, so neither SQLite's nor PostgreSQL's tokenizer finds words in
it. Both backends therefore index the same *search text* made here (:func:`terms`): every run of
CJK characters becomes its characters and overlapping bigrams (``施工噪音`` → 施 工 噪 音 施工 工噪 噪音),
every other word is lower-cased. A query is cut the same way and all its terms must match, so a
two-character word matches exactly where it appears, and a single character works too.

* SQLite: an FTS5 table over ``knowledge_articles.search_text`` (kept by triggers, created by the
  migration), ranked by ``bm25``.
* PostgreSQL: a GIN index over ``to_tsvector('simple', search_text)``, ranked by ``ts_rank``.

No search server is needed. A center that outgrows this (synonyms, typo tolerance, millions of
articles) replaces :func:`search` with a client of its engine (e.g. Elasticsearch/OpenSearch with the
``smartcn`` or IK analyzer, or Meilisearch) and feeds it from the same create/update calls.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Float, Integer, Select, func, or_, select, text
from sqlalchemy.orm import Session

from app.db.models import KnowledgeArticle

_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
MAX_QUERY_TERMS = 32


def _cut(run: str, *, unigrams: bool) -> list[str]:
    if not _CJK.match(run):
        return [run.lower()]
    if len(run) == 1:
        return [run]
    bigrams = [run[i : i + 2] for i in range(len(run) - 1)]
    return [*run, *bigrams] if unigrams else bigrams


def terms(text_: str) -> list[str]:
    """The search terms of a text, as indexed (characters and bigrams of Chinese, lower-cased words)."""
    out: list[str] = []
    for run in _RUNS.findall(text_):
        out.extend(_cut(run, unigrams=True))
    return out


def query_terms(query: str) -> list[str]:
    """The terms a query needs: bigrams of Chinese (a lone character as itself), words; no repeats."""
    seen: dict[str, None] = {}
    for run in _RUNS.findall(query):
        for term in _cut(run, unigrams=False):
            seen.setdefault(term, None)
    return list(seen)[:MAX_QUERY_TERMS]


def search_text(title: str, body: str) -> str:
    return " ".join(terms(f"{title}\n{body}"))


@dataclass(frozen=True, slots=True)
class Hit:
    article: KnowledgeArticle
    score: float


def _valid_at(stmt: Select[tuple[KnowledgeArticle]], at: datetime) -> Select[tuple[KnowledgeArticle]]:
    return stmt.where(
        or_(KnowledgeArticle.valid_from.is_(None), KnowledgeArticle.valid_from <= at),
        or_(KnowledgeArticle.valid_until.is_(None), KnowledgeArticle.valid_until > at),
    )


def search(
    session: Session,
    query: str,
    *,
    valid_at: datetime | None,
    category: str | None = None,
    limit: int = 20,
) -> list[Hit]:
    """Articles matching every term of ``query``, best first; only those valid at ``valid_at`` if given."""
    needed = query_terms(query)
    if not needed:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        match = " AND ".join('"' + term.replace('"', '""') + '"' for term in needed)
        ranked = text(
            "SELECT rowid AS id, bm25(knowledge_fts) AS rank FROM knowledge_fts "
            "WHERE knowledge_fts MATCH :match"
        ).bindparams(match=match)
        sub = ranked.columns(id=Integer, rank=Float).subquery()
        stmt = select(KnowledgeArticle, (-sub.c.rank).label("score")).join(
            sub, sub.c.id == KnowledgeArticle.id
        )
    elif dialect == "postgresql":
        vector = func.to_tsvector("simple", KnowledgeArticle.search_text)
        tsquery = func.plainto_tsquery("simple", " ".join(needed))
        stmt = select(KnowledgeArticle, func.ts_rank(vector, tsquery).label("score")).where(
            vector.op("@@")(tsquery)
        )
    else:
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    if valid_at is not None:
        stmt = _valid_at(stmt, valid_at)
    if category is not None:
        stmt = stmt.where(KnowledgeArticle.category == category)
    rows = session.execute(stmt.order_by(text("score DESC"), KnowledgeArticle.id.desc()).limit(limit)).all()
    return [Hit(article, float(score)) for article, score in rows]


def list_articles(
    session: Session, *, valid_at: datetime | None, category: str | None, limit: int, offset: int
) -> Sequence[KnowledgeArticle]:
    stmt = select(KnowledgeArticle)
    if valid_at is not None:
        stmt = _valid_at(stmt, valid_at)
    if category is not None:
        stmt = stmt.where(KnowledgeArticle.category == category)
    return session.scalars(
        stmt.order_by(KnowledgeArticle.updated_at.desc()).limit(limit).offset(offset)
    ).all()
