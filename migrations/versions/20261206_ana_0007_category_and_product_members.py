"""analytics: exact category and product figures (category days over the subtree, refund
counts of a product, paying members of a product and of a category)

The new tables are filled by `selfmart rebuild-analytics`, not here (the store days are local
days in each store's zone, which SQLite cannot reckon in SQL). A database that already holds
summaries is left marked as not built: `selfmart check-analytics` says to run the rebuild.
An empty one (a new install) is marked built: the refresh fills the tables as orders come.

Revision ID: ana_0007
Revises: ana_0006
Create Date: 2026-12-06 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ana_0007"
down_revision: str | Sequence[str] | None = "ana_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the analytics_refresh_state row saying the tables hold every summarised day
STATE = "scoped_days"


def _ints(*names: str) -> list[sa.Column[int]]:
    return [sa.Column(n, sa.Integer(), nullable=False) for n in names]


def upgrade() -> None:
    with op.batch_alter_table("analytics_product_days") as batch:
        batch.add_column(sa.Column("refunds", sa.Integer(), nullable=False, server_default="0"))
    # A product's statistics by an index-only scan on PostgreSQL.
    op.drop_index("ix_analytics_product_days_product", table_name="analytics_product_days")
    op.create_index(
        "ix_analytics_product_days_product",
        "analytics_product_days",
        ["product_id", "day"],
        postgresql_include=[
            "store_id",
            "orders",
            "quantity",
            "sales_fen",
            "refunds",
            "refunds_fen",
        ],
    )
    op.create_table(
        "analytics_product_members",
        *_ints("store_id"),
        sa.Column("day", sa.Date(), nullable=False),
        *_ints("product_id", "member_id", "orders"),
        sa.PrimaryKeyConstraint(
            "store_id", "day", "product_id", "member_id", name=op.f("pk_analytics_product_members")
        ),
    )
    op.create_index(
        "ix_analytics_product_members_product",
        "analytics_product_members",
        ["product_id", "day"],
        postgresql_include=["store_id", "member_id"],
    )
    op.create_table(
        "analytics_category_days",
        *_ints("store_id"),
        sa.Column("day", sa.Date(), nullable=False),
        *_ints("category_id", "orders", "items", "sales_fen", "refunds", "refunds_fen"),
        sa.PrimaryKeyConstraint(
            "store_id", "day", "category_id", name=op.f("pk_analytics_category_days")
        ),
    )
    op.create_index(
        "ix_analytics_category_days_category",
        "analytics_category_days",
        ["category_id", "day"],
        postgresql_include=["store_id", "orders", "items", "sales_fen", "refunds", "refunds_fen"],
    )
    op.create_table(
        "analytics_category_members",
        *_ints("store_id"),
        sa.Column("day", sa.Date(), nullable=False),
        *_ints("category_id", "member_id", "orders"),
        sa.PrimaryKeyConstraint(
            "store_id",
            "day",
            "category_id",
            "member_id",
            name=op.f("pk_analytics_category_members"),
        ),
    )
    op.create_index(
        "ix_analytics_category_members_category",
        "analytics_category_members",
        ["category_id", "day"],
        postgresql_include=["store_id", "member_id"],
    )
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM analytics_sales_days LIMIT 1")).first() is None:
        bind.execute(
            sa.text(
                "INSERT INTO analytics_refresh_state (name, last_event_id, days_refreshed) "
                "VALUES (:name, 0, 0)"
            ),
            {"name": STATE},
        )


def downgrade() -> None:
    op.execute(sa.text(f"DELETE FROM analytics_refresh_state WHERE name = '{STATE}'"))
    op.drop_index("ix_analytics_category_members_category", "analytics_category_members")
    op.drop_table("analytics_category_members")
    op.drop_index("ix_analytics_category_days_category", "analytics_category_days")
    op.drop_table("analytics_category_days")
    op.drop_index("ix_analytics_product_members_product", "analytics_product_members")
    op.drop_table("analytics_product_members")
    op.drop_index("ix_analytics_product_days_product", table_name="analytics_product_days")
    with op.batch_alter_table("analytics_product_days") as batch:
        batch.drop_column("refunds")
    op.create_index(
        "ix_analytics_product_days_product", "analytics_product_days", ["product_id", "day"]
    )
