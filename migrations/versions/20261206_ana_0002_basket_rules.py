"""analytics: frequently-bought-together runs, their frequent products and association rules

Revision ID: ana_0002
Revises: mem_0002
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import selfmart.db

revision: str = "ana_0002"
down_revision: str | Sequence[str] | None = "mem_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "analytics_basket_runs",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("min_support", sa.Float(), nullable=False),
        sa.Column("min_confidence", sa.Float(), nullable=False),
        sa.Column("min_lift", sa.Float(), nullable=False),
        sa.Column("max_len", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_id", BIG, nullable=True),
        sa.Column("baskets", sa.Integer(), nullable=False),
        sa.Column("products", sa.Integer(), nullable=False),
        sa.Column("itemsets", sa.Integer(), nullable=False),
        sa.Column("rules", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", selfmart.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_analytics_basket_runs_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_basket_runs")),
    )
    op.create_index(
        "ix_analytics_basket_runs_store", "analytics_basket_runs", ["store_id", "id"], unique=False
    )
    op.create_table(
        "analytics_basket_items",
        sa.Column("run_id", BIG, nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_basket_runs.id"],
            name=op.f("fk_analytics_basket_items_run_id_analytics_basket_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "product_id", name=op.f("pk_analytics_basket_items")),
    )
    op.create_table(
        "analytics_basket_rules",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column("run_id", BIG, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("antecedent", JSON, nullable=False),
        sa.Column("consequent", JSON, nullable=False),
        sa.Column("antecedent_first", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("antecedent_count", sa.Integer(), nullable=False),
        sa.Column("consequent_count", sa.Integer(), nullable=False),
        sa.Column("support", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("p1", sa.Integer(), nullable=False),
        sa.Column("p2", sa.Integer(), nullable=False),
        sa.Column("p3", sa.Integer(), nullable=True),
        sa.Column("p4", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["analytics_basket_runs.id"],
            name=op.f("fk_analytics_basket_rules_run_id_analytics_basket_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_basket_rules")),
    )
    op.create_index(
        "ix_analytics_basket_rules_run_lift", "analytics_basket_rules", ["run_id", "lift"]
    )
    op.create_index(
        "ix_analytics_basket_rules_run_pair",
        "analytics_basket_rules",
        ["run_id", "size", "antecedent_first"],
    )


def downgrade() -> None:
    op.drop_table("analytics_basket_rules")
    op.drop_table("analytics_basket_items")
    op.drop_table("analytics_basket_runs")
