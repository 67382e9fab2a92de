"""Presence and compliance: agent transitions, the hash-chained incident log, busy requests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "agent_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=False),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("cause", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_transitions")),
    )
    op.create_index(op.f("ix_agent_transitions_agent_id"), "agent_transitions", ["agent_id"])
    op.create_index(op.f("ix_agent_transitions_at"), "agent_transitions", ["at"])
    op.create_table(
        "compliance_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry", sa.String(20), nullable=False),
        sa.Column("incident_id", sa.String(40), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_compliance_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_compliance_log_hash")),
    )
    op.create_index(op.f("ix_compliance_log_incident_id"), "compliance_log", ["incident_id"])
    op.create_index(op.f("ix_compliance_log_agent_id"), "compliance_log", ["agent_id"])
    op.create_index(op.f("ix_compliance_log_kind"), "compliance_log", ["kind"])
    op.create_index(op.f("ix_compliance_log_started_at"), "compliance_log", ["started_at"])
    chain = op.create_table(
        "compliance_chain",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_chain")),
    )
    op.bulk_insert(chain, [{"id": 1, "last_seq": 0, "last_hash": GENESIS}])
    op.create_table(
        "busy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'denied')", name=op.f("ck_busy_requests_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_busy_requests")),
    )
    op.create_index(op.f("ix_busy_requests_agent_id"), "busy_requests", ["agent_id"])
    op.create_index(op.f("ix_busy_requests_status"), "busy_requests", ["status"])


def downgrade() -> None:
    op.drop_table("busy_requests")
    op.drop_table("compliance_chain")
    op.drop_table("compliance_log")
    op.drop_table("agent_transitions")
