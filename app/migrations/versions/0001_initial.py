"""Initial schema: agents, users, calls, tickets.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('agent', 'supervisor', 'admin')", name=op.f("ck_users_role")),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_users_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index(op.f("ix_users_agent_id"), "users", ["agent_id"])
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_id", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("hangup_cause", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('waiting', 'ringing', 'answered', 'abandoned')", name=op.f("ck_calls_outcome")
        ),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_calls_agent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index(op.f("ix_calls_queue"), "calls", ["queue"])
    op.create_index(op.f("ix_calls_enqueued_at"), "calls", ["enqueued_at"])
    op.create_index(op.f("ix_calls_agent_id"), "calls", ["agent_id"])
    op.create_index(op.f("ix_calls_outcome"), "calls", ["outcome"])
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=True),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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


def downgrade() -> None:
    op.drop_table("tickets")
    op.drop_table("calls")
    op.drop_table("users")
    op.drop_table("agents")
