"""payments: indexes for the console's newest-first payments list (created_at, id) and for
the refunded sum each listed payment shows (refunds by payment)

Revision ID: pay_0003
Revises: alr_0001
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "pay_0003"
down_revision: str | Sequence[str] | None = "alr_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The unfiltered list orders by (created_at, id) descending and reads one page: with this
    # index PostgreSQL walks it backwards and stops after the page instead of sorting the table.
    op.create_index("ix_payments_created", "payments", ["created_at", "id"], unique=False)
    # Each listed page sums its payments' refunds (`WHERE payment_id IN (...)`).
    op.create_index("ix_refunds_payment", "refunds", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_refunds_payment", table_name="refunds")
    op.drop_index("ix_payments_created", table_name="payments")
