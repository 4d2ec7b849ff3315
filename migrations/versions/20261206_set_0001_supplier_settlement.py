"""settlement: supplier statements and their lines; a supplier's settlement basis (goods
received or consignment) and whether it bears shrinkage

Revision ID: set_0001
Revises: mem_0003
Create Date: 2026-12-06 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import selfmart.db

revision: str = "set_0001"
down_revision: str | Sequence[str] | None = "mem_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, selfmart.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("suppliers") as batch:
        batch.add_column(
            sa.Column(
                "settlement_basis",
                sa.String(length=16),
                nullable=False,
                server_default="received",
            )
        )
        batch.add_column(
            sa.Column("shrinkage_borne", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("suppliers") as batch:
        batch.alter_column("settlement_basis", server_default=None)
        batch.alter_column("shrinkage_borne", server_default=None)

    op.create_table(
        "supplier_statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("shrinkage_borne", sa.Boolean(), nullable=False),
        sa.Column("goods_fen", sa.Integer(), nullable=False),
        sa.Column("returns_fen", sa.Integer(), nullable=False),
        sa.Column("shrinkage_fen", sa.Integer(), nullable=False),
        sa.Column("total_fen", sa.Integer(), nullable=False),
        sa.Column("movement_watermark", BIGINT, nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        _at("created_at", False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        _at("generated_at", False),
        _at("reviewed_at", True),
        sa.Column("reviewed_by", sa.String(length=100), nullable=True),
        _at("approved_at", True),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        _at("paid_at", True),
        sa.Column("paid_by", sa.String(length=100), nullable=True),
        sa.Column("payment_reference", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "period_end >= period_start", name=op.f("ck_supplier_statements_period_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_supplier_statements_supplier_id_suppliers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_statements")),
        sa.UniqueConstraint("number", name=op.f("uq_supplier_statements_number")),
    )
    op.create_index(
        "ix_supplier_statements_supplier_period",
        "supplier_statements",
        ["supplier_id", "period_start"],
    )
    op.create_index("ix_supplier_statements_status", "supplier_statements", ["status"])
    op.create_table(
        "supplier_statement_lines",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("statement_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cost_fen", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["statement_id"],
            ["supplier_statements.id"],
            name=op.f("fk_supplier_statement_lines_statement_id_supplier_statements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_supplier_statement_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_statement_lines")),
    )
    op.create_index(
        "ix_supplier_statement_lines_statement", "supplier_statement_lines", ["statement_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_supplier_statement_lines_statement", table_name="supplier_statement_lines")
    op.drop_table("supplier_statement_lines")
    op.drop_index("ix_supplier_statements_status", table_name="supplier_statements")
    op.drop_index("ix_supplier_statements_supplier_period", table_name="supplier_statements")
    op.drop_table("supplier_statements")
    with op.batch_alter_table("suppliers") as batch:
        batch.drop_column("shrinkage_borne")
        batch.drop_column("settlement_basis")
