"""Work orders apart from calls: intake fields, the calls they came from, the knowledge base.

``tickets`` copied six columns of ``calls``; its rows become ``work_orders`` (same ids, status open)
linked to their call through ``work_order_calls``, and the table goes. The knowledge base gets a
full-text index of its own per backend over ``search_text``: an FTS5 table kept by triggers on
SQLite, a GIN index over ``to_tsvector('simple', …)`` on PostgreSQL.

Revision ID: 0008
Revises: 0005 (written on 0004; chained after 0007 and 0005 when main had them)
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)

_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5("
    "search_text, content='knowledge_articles', content_rowid='id', tokenize='unicode61')",
    "CREATE TRIGGER knowledge_fts_ai AFTER INSERT ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER knowledge_fts_ad AFTER DELETE ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_fts(knowledge_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER knowledge_fts_au AFTER UPDATE ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_fts(knowledge_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO knowledge_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "knowledge_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("department", sa.String(100), nullable=True),
        sa.Column("valid_from", _TS, nullable=True),
        sa.Column("valid_until", _TS, nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_articles")),
    )
    op.create_index(op.f("ix_knowledge_articles_category"), "knowledge_articles", ["category"])
    if dialect == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(
            "CREATE INDEX knowledge_fts_search ON knowledge_articles "
            "USING gin (to_tsvector('simple', search_text))"
        )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin_call_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("disposition", sa.String(20), nullable=True),
        sa.Column("non_appeal_kind", sa.String(20), nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("district", sa.String(32), nullable=True),
        sa.Column("citizen_name", sa.String(100), nullable=False),
        sa.Column("contact_number", sa.String(64), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("knowledge_article_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(100), nullable=True),
        sa.Column("deadline_at", _TS, nullable=True),
        sa.Column("submitted_at", _TS, nullable=True),
        sa.Column("submitted_by", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('open', 'accepted', 'closed')", name=op.f("ck_work_orders_status")),
        sa.CheckConstraint(
            "disposition IN ('accepted', 'answered_directly', 'not_an_appeal')",
            name=op.f("ck_work_orders_disposition"),
        ),
        sa.CheckConstraint(
            "non_appeal_kind IN ('silent', 'wrong_number', 'prank', 'test')",
            name=op.f("ck_work_orders_non_appeal_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["origin_call_id"], ["calls.id"], name=op.f("fk_work_orders_origin_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["knowledge_article_id"],
            ["knowledge_articles.id"],
            name=op.f("fk_work_orders_knowledge_article_id_knowledge_articles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
        sa.UniqueConstraint("origin_call_id", name=op.f("uq_work_orders_origin_call_id")),
    )
    op.create_index(op.f("ix_work_orders_status"), "work_orders", ["status"])
    op.create_index(op.f("ix_work_orders_disposition"), "work_orders", ["disposition"])
    op.create_index(op.f("ix_work_orders_category"), "work_orders", ["category"])
    op.create_table(
        "work_order_calls",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_work_order_calls_call_id_calls")),
        sa.ForeignKeyConstraint(
            ["work_order_id"], ["work_orders.id"], name=op.f("fk_work_order_calls_work_order_id_work_orders")
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_work_order_calls")),
    )
    op.create_index(op.f("ix_work_order_calls_work_order_id"), "work_order_calls", ["work_order_id"])
    op.execute(
        "INSERT INTO work_orders (id, origin_call_id, status, description, address, citizen_name, "
        "contact_number, urgent, confidential, version, created_at, updated_at) "
        "SELECT id, call_id, 'open', '', '', '', COALESCE(caller_number, ''), false, false, 1, "
        "created_at, created_at FROM tickets"
    )
    op.execute(
        "INSERT INTO work_order_calls (call_id, work_order_id, linked_at) "
        "SELECT call_id, id, created_at FROM tickets"
    )
    if dialect == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('work_orders', 'id'), COALESCE(MAX(id), 0) + 1, false) "
            "FROM work_orders"
        )
    op.drop_table("tickets")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("enqueued_at", _TS, nullable=False),
        sa.Column("answered_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('open')", name=op.f("ck_tickets_status")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_tickets_agent_id_agents")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_tickets_call_id_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("call_id", name=op.f("uq_tickets_call_id")),
    )
    op.create_index(op.f("ix_tickets_agent_id"), "tickets", ["agent_id"])
    op.create_index(op.f("ix_tickets_caller_number"), "tickets", ["caller_number"])
    op.create_index(op.f("ix_tickets_answered_at"), "tickets", ["answered_at"])
    op.create_index(op.f("ix_tickets_status"), "tickets", ["status"])
    op.execute(
        "INSERT INTO tickets (id, call_id, caller_number, queue, agent_id, enqueued_at, answered_at, "
        "ended_at, status, created_at) SELECT w.id, c.id, c.caller_number, c.queue, c.agent_id, "
        "c.enqueued_at, c.answered_at, c.ended_at, 'open', w.created_at FROM work_orders w "
        "JOIN calls c ON c.id = w.origin_call_id WHERE c.agent_id IS NOT NULL AND c.answered_at IS NOT NULL"
    )
    op.drop_table("work_order_calls")
    op.drop_table("work_orders")
    if dialect == "sqlite":
        for trigger in ("knowledge_fts_ai", "knowledge_fts_ad", "knowledge_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS knowledge_fts")
    op.drop_table("knowledge_articles")
