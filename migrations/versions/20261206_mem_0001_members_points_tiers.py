"""members: profiles, the points ledger (entries, FIFO lots, cached balance), the orders that
earned points, tiers and tier history, the programme's rules; the member:* permission codes
for the built-in roles

Revision ID: mem_0001
Revises: iam_0001
Create Date: 2026-12-06 03:01:57
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import selfmart.db

revision: str = "mem_0001"
down_revision: str | Sequence[str] | None = "iam_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: role code -> member codes it is given (the super admin gets every code from
#: sync_builtin_roles as well; granted here so an existing database has them at once)
_GRANTS = {
    "super_admin": (
        "member:read",
        "member:write",
        "member:pii",
        "member:points",
        "member:tier",
        "member:export",
    ),
    "admin": (
        "member:read",
        "member:write",
        "member:pii",
        "member:points",
        "member:tier",
        "member:export",
    ),
    "cashier": ("member:read",),
}


def upgrade() -> None:
    op.create_table(
        "member_program",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("points_per_yuan", sa.Integer(), nullable=False),
        sa.Column("points_expiry_days", sa.Integer(), nullable=False),
        sa.Column("tier_window_days", sa.Integer(), nullable=False),
        sa.Column("downgrades_enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_program")),
    )
    op.create_table(
        "member_tiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("min_spend_fen", sa.Integer(), nullable=True),
        sa.Column("min_orders", sa.Integer(), nullable=True),
        sa.Column("match", sa.String(length=8), nullable=False),
        sa.Column("discount_bp", sa.Integer(), nullable=False),
        sa.Column("points_multiplier_pct", sa.Integer(), nullable=False),
        sa.Column("birthday_points", sa.Integer(), nullable=False),
        sa.Column("birthday_benefit", sa.String(length=300), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "discount_bp >= 0 AND discount_bp <= 10000", name=op.f("ck_member_tiers_discount_range")
        ),
        sa.CheckConstraint(
            "points_multiplier_pct >= 0", name=op.f("ck_member_tiers_multiplier_nonnegative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_tiers")),
        sa.UniqueConstraint("code", name=op.f("uq_member_tiers_code")),
        sa.UniqueConstraint("rank", name=op.f("uq_member_tiers_rank")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("member_no", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=True),
        sa.Column("mobile", sa.String(length=16), nullable=True),
        sa.Column("gender", sa.String(length=8), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("card_no", sa.String(length=32), nullable=True),
        sa.Column("tier_id", sa.Integer(), nullable=True),
        sa.Column("points_balance", sa.Integer(), nullable=False),
        sa.Column("home_store_id", sa.Integer(), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("registered_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("erased_at", selfmart.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("points_balance >= 0", name=op.f("ck_members_points_nonnegative")),
        sa.ForeignKeyConstraint(
            ["home_store_id"],
            ["stores.id"],
            name=op.f("fk_members_home_store_id_stores"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tier_id"],
            ["member_tiers.id"],
            name=op.f("fk_members_tier_id_member_tiers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("card_no", name=op.f("uq_members_card_no")),
        sa.UniqueConstraint("member_no", name=op.f("uq_members_member_no")),
        sa.UniqueConstraint("mobile", name=op.f("uq_members_mobile")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_home_store", ["home_store_id"], unique=False)
        batch_op.create_index(
            "ix_members_status_registered", ["status", "registered_at"], unique=False
        )
        batch_op.create_index("ix_members_tier", ["tier_id"], unique=False)

    op.create_table(
        "member_orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("order_id", _BIG, nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("paid_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("net_fen", sa.Integer(), nullable=False),
        sa.Column("rate_pct", sa.Integer(), nullable=False),
        sa.Column("points_earned", sa.Integer(), nullable=False),
        sa.Column("updated_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_orders_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_member_orders_order_id")),
    )
    with op.batch_alter_table("member_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_orders_member_paid", ["member_id", "paid_at"], unique=False
        )

    op.create_table(
        "member_points_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("balance_after", sa.Integer(), nullable=False),
        sa.Column("order_id", _BIG, nullable=True),
        sa.Column("lot_id", _BIG, nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind <> 'adjust' OR (reason IS NOT NULL AND reason <> '')",
            name=op.f("ck_member_points_entries_reason_required"),
        ),
        sa.CheckConstraint("points <> 0", name=op.f("ck_member_points_entries_points_nonzero")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_points_entries_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_points_entries")),
    )
    with op.batch_alter_table("member_points_entries", schema=None) as batch_op:
        batch_op.create_index("ix_member_points_entries_member", ["member_id", "id"], unique=False)
        batch_op.create_index("ix_member_points_entries_order", ["order_id"], unique=False)

    op.create_table(
        "member_points_lots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("awarded", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("awarded_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("order_id", _BIG, nullable=True),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= awarded",
            name=op.f("ck_member_points_lots_remaining_range"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_points_lots_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_points_lots")),
    )
    with op.batch_alter_table("member_points_lots", schema=None) as batch_op:
        batch_op.create_index("ix_member_points_lots_expiry", ["expires_at"], unique=False)
        batch_op.create_index(
            "ix_member_points_lots_open", ["member_id", "expires_at", "id"], unique=False
        )

    op.create_table(
        "member_tier_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("from_tier_id", sa.Integer(), nullable=True),
        sa.Column("to_tier_id", sa.Integer(), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("order_id", _BIG, nullable=True),
        sa.Column("spend_fen", sa.Integer(), nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("occurred_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_tier_changes_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_tier_changes")),
    )
    with op.batch_alter_table("member_tier_changes", schema=None) as batch_op:
        batch_op.create_index("ix_member_tier_changes_member", ["member_id", "id"], unique=False)

    op.execute(
        "INSERT INTO member_program (id, points_per_yuan, points_expiry_days, tier_window_days, "
        "downgrades_enabled, updated_at) VALUES (1, 1, 365, 365, false, CURRENT_TIMESTAMP)"
    )
    for role, perms in _GRANTS.items():
        for perm in perms:
            op.execute(
                "INSERT INTO role_permissions (role_id, permission) "
                f"SELECT r.id, '{perm}' FROM roles r WHERE r.code = '{role}' "
                "AND NOT EXISTS (SELECT 1 FROM role_permissions p "
                f"WHERE p.role_id = r.id AND p.permission = '{perm}')"
            )


def downgrade() -> None:
    op.execute("DELETE FROM role_permissions WHERE permission LIKE 'member:%'")
    with op.batch_alter_table("member_tier_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_member_tier_changes_member")

    op.drop_table("member_tier_changes")
    with op.batch_alter_table("member_points_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_member_points_lots_open")
        batch_op.drop_index("ix_member_points_lots_expiry")

    op.drop_table("member_points_lots")
    with op.batch_alter_table("member_points_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_member_points_entries_order")
        batch_op.drop_index("ix_member_points_entries_member")

    op.drop_table("member_points_entries")
    with op.batch_alter_table("member_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_member_orders_member_paid")

    op.drop_table("member_orders")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_tier")
        batch_op.drop_index("ix_members_status_registered")
        batch_op.drop_index("ix_members_home_store")

    op.drop_table("members")
    op.drop_table("member_tiers")
    op.drop_table("member_program")
