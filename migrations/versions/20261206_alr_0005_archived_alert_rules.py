"""alerts: a deleted alert rule is archived, keeping its alerts' history

Revision ID: alr_0005
Revises: pay_0004
Create Date: 2026-12-06 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from selfmart.db import UTCDateTime

revision: str = "alr_0005"
down_revision: str | Sequence[str] | None = "pay_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.add_column(sa.Column("archived_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_column("archived_at")
