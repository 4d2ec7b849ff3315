"""terminals report their state in the heartbeat: status, unsent orders, printer and scanner

Revision ID: tm_0001
Revises: aj_0002
Create Date: 2026-12-06 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tm_0001"
down_revision: str | Sequence[str] | None = "aj_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("terminals") as batch:
        batch.add_column(sa.Column("reported_status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("unsent_orders", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("printer_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("scanner_state", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("terminals") as batch:
        batch.drop_column("scanner_state")
        batch.drop_column("printer_state")
        batch.drop_column("unsent_orders")
        batch.drop_column("reported_status")
