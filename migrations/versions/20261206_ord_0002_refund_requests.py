"""orders: refund requests (a refund above its requester's limit waits for approval); order
search by a part of the order number (trigrams on PostgreSQL) and by a phone's last digits;
the order:pii permission for the built-in admin role

Revision ID: ord_0002
Revises: merge_0001
Create Date: 2026-12-06 02:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import selfmart.db

revision: str = "ord_0002"
down_revision: str | Sequence[str] | None = "merge_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "refund_requests",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("order_id", _BIG, nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("requested_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_by_id", sa.String(length=64), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requester_limit_fen", sa.Integer(), nullable=True),
        sa.Column("decided_at", selfmart.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.String(length=64), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.Column("refund_id", _BIG, nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_refund_requests_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
            name=op.f("fk_refund_requests_refund_id_refunds"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_requests")),
    )
    with op.batch_alter_table("refund_requests", schema=None) as batch_op:
        batch_op.create_index("ix_refund_requests_queue", ["status", "requested_at"])
        batch_op.create_index("ix_refund_requests_order", ["order_id", "id"])

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_phone_tail", ["phone_last4", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        # A trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_orders_order_no_trgm",
            "orders",
            ["order_no"],
            postgresql_using="gin",
            postgresql_ops={"order_no": "gin_trgm_ops"},
        )
    else:
        op.create_index("ix_orders_order_no_trgm", "orders", ["order_no"])

    # Admins see customers' phones whole, as they did before the code existed (the super
    # admin's role is given every code by sync_builtin_roles; it is granted here as well).
    op.execute(
        "INSERT INTO role_permissions (role_id, permission) "
        "SELECT r.id, 'order:pii' FROM roles r WHERE r.code IN ('admin', 'super_admin') "
        "AND NOT EXISTS (SELECT 1 FROM role_permissions p "
        "WHERE p.role_id = r.id AND p.permission = 'order:pii')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM role_permissions WHERE permission = 'order:pii'")
    op.drop_index("ix_orders_order_no_trgm", table_name="orders")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_phone_tail")
    with op.batch_alter_table("refund_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_refund_requests_order")
        batch_op.drop_index("ix_refund_requests_queue")
    op.drop_table("refund_requests")
