"""Records that survive restarts exactly once.

- Incident log entries record how their hash reads them (version 2 hashes durations exactly);
  entries already written keep version 1, so their hashes stay verifiable as they were computed.
- Agent transitions carry the id of the storage write that made them (unique), so a write replayed
  from the write journal adds its row once.

Revision ID: 0005
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0007"  # main had 0007 on 0004 at merge time
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("compliance_log") as batch:
        batch.add_column(sa.Column("hash_version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("agent_transitions") as batch:
        batch.add_column(sa.Column("write_id", sa.String(32), nullable=True))
        batch.create_unique_constraint("uq_agent_transitions_write_id", ["write_id"])


def downgrade() -> None:
    with op.batch_alter_table("agent_transitions") as batch:
        batch.drop_constraint("uq_agent_transitions_write_id", type_="unique")
        batch.drop_column("write_id")
    with op.batch_alter_table("compliance_log") as batch:
        batch.drop_column("hash_version")
