"""payments: a store may override its payment account's automatic refund of a double payment
(null follows the account)

Revision ID: pay_0005
Revises: mem_0005
Create Date: 2026-12-06 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "pay_0005"
down_revision: str | Sequence[str] | None = "mem_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stores") as batch_op:
        batch_op.add_column(sa.Column("auto_refund_duplicates", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stores") as batch_op:
        batch_op.drop_column("auto_refund_duplicates")
