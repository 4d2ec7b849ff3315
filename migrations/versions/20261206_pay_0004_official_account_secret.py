"""payments: the WeChat official account's AppSecret on a merchant account (sealed like the
other secrets), so the phone page opened inside WeChat can learn the payer's openid and pay
by JSAPI

Revision ID: pay_0004
Revises: mem_0004
Create Date: 2026-12-06 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "pay_0004"
down_revision: str | Sequence[str] | None = "mem_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_accounts") as batch:
        batch.add_column(sa.Column("app_secret_encrypted", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_accounts") as batch:
        batch.drop_column("app_secret_encrypted")
