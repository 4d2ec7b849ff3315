"""reconciliation: a run per merchant account, bill date and kind, its matched lines and
differences, and the fee rate agreed per account

Revision ID: rec_0001
Revises: ana_0001
Create Date: 2026-12-06 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import selfmart.db

revision: str = "rec_0001"
down_revision: str | Sequence[str] | None = "ana_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, selfmart.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("bill_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("started_at", False),
        _at("finished_at", True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        _at("last_error_at", True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("file_size", sa.Integer(), nullable=True),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("difference_count", sa.Integer(), nullable=False),
        sa.Column("bill_gross_fen", sa.Integer(), nullable=False),
        sa.Column("bill_refund_fen", sa.Integer(), nullable=False),
        sa.Column("bill_fee_fen", sa.Integer(), nullable=False),
        sa.Column("trailer_count", sa.Integer(), nullable=True),
        sa.Column("trailer_gross_fen", sa.Integer(), nullable=True),
        sa.Column("trailer_refund_fen", sa.Integer(), nullable=True),
        sa.Column("trailer_fee_fen", sa.Integer(), nullable=True),
        sa.Column("our_gross_fen", sa.Integer(), nullable=False),
        sa.Column("our_refund_fen", sa.Integer(), nullable=False),
        sa.Column("expected_fee_fen", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["payment_accounts.id"],
            name=op.f("fk_reconciliation_runs_account_id_payment_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
        sa.UniqueConstraint(
            "account_id",
            "bill_date",
            "kind",
            name=op.f("uq_reconciliation_runs_account_id_bill_date_kind"),
        ),
    )
    op.create_index("ix_reconciliation_runs_date", "reconciliation_runs", ["bill_date"])
    op.create_table(
        "reconciliation_items",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("difference", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("out_trade_no", sa.String(length=64), nullable=True),
        sa.Column("out_refund_no", sa.String(length=64), nullable=True),
        sa.Column("refund_ref", sa.String(length=64), nullable=True),
        sa.Column("payment_id", BIGINT, nullable=True),
        sa.Column("refund_id", BIGINT, nullable=True),
        sa.Column("order_id", BIGINT, nullable=True),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("our_amount_fen", sa.Integer(), nullable=True),
        sa.Column("our_status", sa.String(length=16), nullable=True),
        sa.Column("bill_amount_fen", sa.Integer(), nullable=True),
        sa.Column("bill_status", sa.String(length=16), nullable=True),
        sa.Column("bill_fee_fen", sa.Integer(), nullable=True),
        sa.Column("expected_fee_fen", sa.Integer(), nullable=True),
        _at("occurred_at", True),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("line", JSON, nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        _at("resolved_at", True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["reconciliation_runs.id"],
            name=op.f("fk_reconciliation_items_run_id_reconciliation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_items")),
    )
    op.create_index("ix_reconciliation_items_run", "reconciliation_items", ["run_id"])
    op.create_index("ix_reconciliation_items_payment", "reconciliation_items", ["payment_id"])
    op.create_index("ix_reconciliation_items_refund", "reconciliation_items", ["refund_id"])
    op.create_index(
        "ix_reconciliation_items_state", "reconciliation_items", ["state", "difference"]
    )
    op.create_table(
        "reconciliation_fee_rates",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        _at("updated_at", False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["payment_accounts.id"],
            name=op.f("fk_reconciliation_fee_rates_account_id_payment_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_reconciliation_fee_rates")),
    )


def downgrade() -> None:
    op.drop_table("reconciliation_fee_rates")
    op.drop_index("ix_reconciliation_items_state", table_name="reconciliation_items")
    op.drop_index("ix_reconciliation_items_refund", table_name="reconciliation_items")
    op.drop_index("ix_reconciliation_items_payment", table_name="reconciliation_items")
    op.drop_index("ix_reconciliation_items_run", table_name="reconciliation_items")
    op.drop_table("reconciliation_items")
    op.drop_index("ix_reconciliation_runs_date", table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
