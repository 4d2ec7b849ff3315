"""orders: each order line carries when it was written (created_at), the column PostgreSQL can
partition the lines by month on (`selfmart partition-order-lines`, docs/analytics.md); filled
from the orders for the lines already there

Revision ID: ord_0003
Revises: aud_0002
Create Date: 2026-12-06 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ord_0003"
down_revision: str | Sequence[str] | None = "aud_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite cannot add a NOT NULL column whose default is not a constant, and copying the
    # table instead would trip the refund lines' foreign key: there the column gets a constant
    # placeholder default (every insert gives the time: the model's default), filled below.
    sqlite = op.get_bind().dialect.name == "sqlite"
    default = sa.text("'1970-01-01 00:00:00'") if sqlite else sa.func.now()
    op.add_column(
        "order_lines",
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=default, nullable=False),
    )
    op.execute(
        "UPDATE order_lines SET created_at = "
        "(SELECT orders.created_at FROM orders WHERE orders.id = order_lines.order_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("order_lines") as batch_op:
        batch_op.drop_column("created_at")
