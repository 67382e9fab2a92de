"""Agent profiles: queues served, skills with levels, order, and a hashed phone PIN.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("queues", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("skills", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("sort_order", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("pin_hash", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("pin_hash")
        batch.drop_column("sort_order")
        batch.drop_column("skills")
        batch.drop_column("queues")
