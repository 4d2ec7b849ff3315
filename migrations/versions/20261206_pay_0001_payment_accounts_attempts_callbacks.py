"""payments: merchant accounts (channel settings), attempt fields on payments, refund
fields, and every platform callback

Revision ID: pay_0001
Revises: aud_0001
Create Date: 2026-12-06 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import selfmart.db

revision: str = "pay_0001"
down_revision: str | Sequence[str] | None = "aud_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("base_url", sa.String(length=300), nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=False),
        sa.Column("private_key_id", sa.String(length=128), nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("api_v3_key_encrypted", sa.Text(), nullable=True),
        sa.Column(
            "platform_public_keys",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("notify_url", sa.String(length=300), nullable=True),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("auto_refund_duplicates", sa.Boolean(), nullable=False),
        sa.Column("key_version", sa.String(length=16), nullable=False),
        sa.Column("created_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_payment_accounts_store_id_stores"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_accounts")),
    )
    with op.batch_alter_table("payment_accounts", schema=None) as batch_op:
        batch_op.create_index(
            "uq_payment_accounts_chain_channel",
            ["channel"],
            unique=True,
            postgresql_where=sa.text("store_id IS NULL"),
            sqlite_where=sa.text("store_id IS NULL"),
        )
        batch_op.create_index(
            "uq_payment_accounts_store_channel",
            ["store_id", "channel"],
            unique=True,
            postgresql_where=sa.text("store_id IS NOT NULL"),
            sqlite_where=sa.text("store_id IS NOT NULL"),
        )

    op.create_table(
        "payment_callbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("received_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column("notification_id", sa.String(length=128), nullable=True),
        sa.Column("out_trade_no", sa.String(length=64), nullable=True),
        sa.Column("out_refund_no", sa.String(length=64), nullable=True),
        sa.Column("transaction_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("amount_fen", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("refund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "decoded",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["payment_accounts.id"],
            name=op.f("fk_payment_callbacks_account_id_payment_accounts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_payment_callbacks_payment_id_payments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
            name=op.f("fk_payment_callbacks_refund_id_refunds"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_callbacks")),
    )
    with op.batch_alter_table("payment_callbacks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payment_callbacks_account_received", ["account_id", "received_at"], unique=False
        )
        batch_op.create_index("ix_payment_callbacks_payment", ["payment_id"], unique=False)
        batch_op.create_index("ix_payment_callbacks_received", ["received_at"], unique=False)

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("mode", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("out_trade_no", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("attempt_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("expires_at", selfmart.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("updated_at", selfmart.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("failure_code", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "raw_request",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(
            sa.Column(
                "raw_response",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.create_index("ix_payments_status_expires", ["status", "expires_at"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_payments_account_id_out_trade_no"), ["account_id", "out_trade_no"]
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_payments_order_id_attempt_id"), ["order_id", "attempt_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_payments_account_id_payment_accounts"),
            "payment_accounts",
            ["account_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("out_refund_no", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("updated_at", selfmart.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("failure_code", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "raw_request",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(
            sa.Column(
                "raw_response",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_refunds_account_id_out_refund_no"), ["account_id", "out_refund_no"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_refunds_account_id_payment_accounts"),
            "payment_accounts",
            ["account_id"],
            ["id"],
            ondelete="RESTRICT",
        )

    # The super admin holds every code (sync_builtin_roles gives it them too).
    for code in ("payment_account:read", "payment_account:write"):
        op.execute(
            "INSERT INTO role_permissions (role_id, permission) "
            f"SELECT r.id, '{code}' FROM roles r WHERE r.code = 'super_admin' "
            "AND NOT EXISTS (SELECT 1 FROM role_permissions p "
            f"WHERE p.role_id = r.id AND p.permission = '{code}')"
        )


def downgrade() -> None:
    op.execute(
        "DELETE FROM role_permissions WHERE permission IN "
        "('payment_account:read', 'payment_account:write')"
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_refunds_account_id_payment_accounts"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_refunds_account_id_out_refund_no"), type_="unique")
        batch_op.drop_column("raw_response")
        batch_op.drop_column("raw_request")
        batch_op.drop_column("failure_code")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("out_refund_no")
        batch_op.drop_column("account_id")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_payments_account_id_payment_accounts"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_payments_order_id_attempt_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_payments_account_id_out_trade_no"), type_="unique")
        batch_op.drop_index("ix_payments_status_expires")
        batch_op.drop_column("raw_response")
        batch_op.drop_column("raw_request")
        batch_op.drop_column("failure_code")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("attempt_id")
        batch_op.drop_column("out_trade_no")
        batch_op.drop_column("mode")
        batch_op.drop_column("account_id")

    with op.batch_alter_table("payment_callbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_payment_callbacks_received")
        batch_op.drop_index("ix_payment_callbacks_payment")
        batch_op.drop_index("ix_payment_callbacks_account_received")

    op.drop_table("payment_callbacks")
    with op.batch_alter_table("payment_accounts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_payment_accounts_store_channel",
            postgresql_where=sa.text("store_id IS NOT NULL"),
            sqlite_where=sa.text("store_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "uq_payment_accounts_chain_channel",
            postgresql_where=sa.text("store_id IS NULL"),
            sqlite_where=sa.text("store_id IS NULL"),
        )

    op.drop_table("payment_accounts")
