"""Calls can overflow: outcome ``overflowed`` with where to and why.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "outcome IN ('waiting', 'ringing', 'answered', 'abandoned')"
NEW = "outcome IN ('waiting', 'ringing', 'answered', 'abandoned', 'overflowed')"


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_constraint(op.f("ck_calls_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_calls_outcome"), sa.text(NEW))
        batch.add_column(sa.Column("overflow_to", sa.String(64), nullable=True))
        batch.add_column(sa.Column("overflow_reason", sa.String(20), nullable=True))


def downgrade() -> None:
    op.execute("UPDATE calls SET outcome = 'abandoned' WHERE outcome = 'overflowed'")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("overflow_reason")
        batch.drop_column("overflow_to")
        batch.drop_constraint(op.f("ck_calls_outcome"), type_="check")
        batch.create_check_constraint(op.f("ck_calls_outcome"), sa.text(OLD))
