"""analytics: sales summaries per store and local day (sales, products, members, hours) and
the refresh job's high-water mark

Revision ID: ana_0001
Revises: mem_0001
Create Date: 2026-12-06 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import selfmart.db

revision: str = "ana_0001"
down_revision: str | Sequence[str] | None = "mem_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _counts(*names: str) -> list[sa.Column[int]]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names]


def _money(*names: str) -> list[sa.Column[int]]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names]


def upgrade() -> None:
    op.create_table(
        "analytics_sales_days",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_counts("orders", "items", "member_orders", "refunds"),
        *_money("sales_fen", "member_sales_fen", "refunds_fen"),
        sa.PrimaryKeyConstraint("store_id", "day", name=op.f("pk_analytics_sales_days")),
    )
    op.create_index(
        "ix_analytics_sales_days_day", "analytics_sales_days", ["day", "store_id"], unique=False
    )
    op.create_table(
        "analytics_product_days",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        *_counts("orders", "quantity", "refund_qty"),
        *_money("sales_fen", "refunds_fen"),
        sa.PrimaryKeyConstraint(
            "store_id", "day", "product_id", name=op.f("pk_analytics_product_days")
        ),
    )
    op.create_index(
        "ix_analytics_product_days_product",
        "analytics_product_days",
        ["product_id", "day"],
        unique=False,
    )
    op.create_index(
        "ix_analytics_product_days_category",
        "analytics_product_days",
        ["category_id", "day"],
        unique=False,
    )
    op.create_index(
        "ix_analytics_product_days_day", "analytics_product_days", ["day", "store_id"], unique=False
    )
    op.create_table(
        "analytics_member_days",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        *_counts("orders"),
        *_money("sales_fen"),
        sa.PrimaryKeyConstraint(
            "store_id", "day", "member_id", name=op.f("pk_analytics_member_days")
        ),
    )
    op.create_index(
        "ix_analytics_member_days_day", "analytics_member_days", ["day", "store_id"], unique=False
    )
    op.create_table(
        "analytics_hour_cells",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("payment_method", sa.String(length=16), nullable=False),
        *_counts("orders"),
        *_money("sales_fen"),
        sa.PrimaryKeyConstraint(
            "store_id", "day", "hour", "payment_method", name=op.f("pk_analytics_hour_cells")
        ),
    )
    state = op.create_table(
        "analytics_refresh_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column(
            "last_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("refreshed_at", selfmart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("days_refreshed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_refresh_state")),
    )
    # The row the refresh locks, there from the start: two first refreshes at once would
    # otherwise both try to insert it.
    op.bulk_insert(state, [{"name": "sales", "last_event_id": 0, "days_refreshed": 0}])
    op.create_index("ix_orders_store_paid", "orders", ["store_id", "paid_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_orders_store_paid", table_name="orders")
    op.drop_table("analytics_refresh_state")
    op.drop_table("analytics_hour_cells")
    op.drop_index("ix_analytics_member_days_day", table_name="analytics_member_days")
    op.drop_table("analytics_member_days")
    op.drop_index("ix_analytics_product_days_day", table_name="analytics_product_days")
    op.drop_index("ix_analytics_product_days_category", table_name="analytics_product_days")
    op.drop_index("ix_analytics_product_days_product", table_name="analytics_product_days")
    op.drop_table("analytics_product_days")
    op.drop_index("ix_analytics_sales_days_day", table_name="analytics_sales_days")
    op.drop_table("analytics_sales_days")
