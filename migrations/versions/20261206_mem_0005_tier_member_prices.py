"""members: whether a tier's members pay products' member prices (the issue's "discount rate or
member prices"); every existing tier keeps them

Revision ID: mem_0005
Revises: ana_0005
Create Date: 2026-12-06 13:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "mem_0005"
down_revision: str | Sequence[str] | None = "ana_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("member_tiers") as batch:
        batch.add_column(
            sa.Column("member_prices", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("member_tiers") as batch:
        batch.drop_column("member_prices")
