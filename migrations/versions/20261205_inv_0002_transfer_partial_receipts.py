"""transfers: partial receipts (partially_received status, received within shipped)

Revision ID: inv_0002
Revises: inv_0001
Create Date: 2026-12-05 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "inv_0002"
down_revision: str | Sequence[str] | None = "inv_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stock_transfers", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=16),
            type_=sa.String(length=24),
            existing_nullable=False,
        )
    with op.batch_alter_table("stock_transfer_lines", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "received_within_quantity",
            "quantity_received IS NULL"
            " OR (quantity_received >= 0 AND quantity_received <= quantity)",
        )


def downgrade() -> None:
    with op.batch_alter_table("stock_transfer_lines", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("ck_stock_transfer_lines_received_within_quantity"), type_="check"
        )
    op.execute(
        "UPDATE stock_transfers SET status = 'in_transit' WHERE status = 'partially_received'"
    )
    with op.batch_alter_table("stock_transfers", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=24),
            type_=sa.String(length=16),
            existing_nullable=False,
        )
