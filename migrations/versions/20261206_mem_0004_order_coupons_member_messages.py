"""members: the coupon an order redeemed (code and what it took off, kept on the order even
after the coupon is given back), and the messages a member reads on their own page

Revision ID: mem_0004
Revises: ana_0003
Create Date: 2026-12-06 08:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import selfmart.db

revision: str = "mem_0004"
down_revision: str | Sequence[str] | None = "ana_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = selfmart.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coupon_code", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("coupon_fen", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "member_messages",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("member_id", _BIG, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column("order_id", _BIG, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("read_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_messages_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_messages")),
    )
    with op.batch_alter_table("member_messages", schema=None) as batch_op:
        batch_op.create_index("ix_member_messages_member", ["member_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_member_messages_member")
    op.drop_table("member_messages")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("coupon_fen")
        batch_op.drop_column("coupon_code")
