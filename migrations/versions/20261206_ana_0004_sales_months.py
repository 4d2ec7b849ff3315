"""analytics: a store's sales by calendar month, summed from its days

Revision ID: ana_0004
Revises: alr_0005
Create Date: 2026-12-06 12:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ana_0004"
down_revision: str | Sequence[str] | None = "alr_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIELDS = (
    "orders",
    "sales_fen",
    "items",
    "member_orders",
    "member_sales_fen",
    "refunds",
    "refunds_fen",
)


def upgrade() -> None:
    op.create_table(
        "analytics_sales_months",
        sa.Column("store_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        *(
            sa.Column(f, sa.BigInteger() if f.endswith("_fen") else sa.Integer(), nullable=False)
            for f in FIELDS
        ),
        sa.PrimaryKeyConstraint("store_id", "month", name=op.f("pk_analytics_sales_months")),
    )
    # Summed from the day rows already there, so no rebuild is needed after upgrading.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        month = "date_trunc('month', day)::date"
    else:
        month = "date(day, 'start of month')"
    sums = ", ".join(f"sum({f})" for f in FIELDS)
    op.execute(
        f"INSERT INTO analytics_sales_months (store_id, month, {', '.join(FIELDS)}) "
        f"SELECT store_id, {month}, {sums} FROM analytics_sales_days GROUP BY store_id, {month}"
    )


def downgrade() -> None:
    op.drop_table("analytics_sales_months")
