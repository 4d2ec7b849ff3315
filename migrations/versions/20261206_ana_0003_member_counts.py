"""analytics: distinct paying members per store (and for the chain) by day, week, month, year

Revision ID: ana_0003
Revises: pay_0003
Create Date: 2026-12-06 09:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ana_0003"
down_revision: str | Sequence[str] | None = "pay_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Filled by `selfmart rebuild-analytics` (and kept by the refresh); until then the
    # statistics count distinct members from analytics_member_days as before.
    op.create_table(
        "analytics_member_counts",
        sa.Column("store_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "store_id", "kind", "start", name=op.f("pk_analytics_member_counts")
        ),
    )


def downgrade() -> None:
    op.drop_table("analytics_member_counts")
