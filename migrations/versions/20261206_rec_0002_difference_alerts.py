"""reconciliation: when a difference left open for more than a day was alerted (once)

Revision ID: rec_0002
Revises: ops_0001
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import selfmart.db

revision: str = "rec_0002"
down_revision: str | Sequence[str] | None = "ops_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reconciliation_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alerted_at", selfmart.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_items", schema=None) as batch_op:
        batch_op.drop_column("alerted_at")
