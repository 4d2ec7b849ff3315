"""analytics: member days found by member (the live tail's member correction, repeat members)

Revision ID: ana_0006
Revises: ord_0003
Create Date: 2026-12-06 16:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ana_0006"
down_revision: str | Sequence[str] | None = "ord_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_analytics_member_days_member"),
        "analytics_member_days",
        ["member_id", "day"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_analytics_member_days_member"), table_name="analytics_member_days")
