"""members: merged records, saved segments, coupon templates, coupons and issue runs; the
member:marketing permission for the built-in roles

Revision ID: mem_0003
Revises: rec_0002
Create Date: 2026-12-06 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import selfmart.db

revision: str = "mem_0003"
down_revision: str | Sequence[str] | None = "rec_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = selfmart.db.UTCDateTime(timezone=True)
_GRANTS = {"super_admin": ("member:marketing",), "admin": ("member:marketing",)}


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", _BIG, nullable=True))
    # A member's purchase history reads their orders.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_member_created", ["member_id", "created_at"])
    op.create_table(
        "member_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("rules", _JSON, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_member_segments_name")),
    )
    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("amount_off_fen", sa.Integer(), nullable=False),
        sa.Column("percent_off_bp", sa.Integer(), nullable=False),
        sa.Column("max_off_fen", sa.Integer(), nullable=True),
        sa.Column("min_spend_fen", sa.Integer(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("valid_from", _TS, nullable=True),
        sa.Column("valid_to", _TS, nullable=True),
        sa.Column("birthday", sa.Boolean(), nullable=False),
        sa.Column("birthday_tier_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('amount', 'percent')", name=op.f("ck_coupon_templates_kind_known")
        ),
        sa.CheckConstraint(
            "(kind = 'amount' AND amount_off_fen > 0) OR "
            "(kind = 'percent' AND percent_off_bp > 0 AND percent_off_bp <= 10000)",
            name=op.f("ck_coupon_templates_value_set"),
        ),
        sa.CheckConstraint(
            "min_spend_fen >= 0", name=op.f("ck_coupon_templates_min_spend_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["birthday_tier_id"],
            ["member_tiers.id"],
            name=op.f("fk_coupon_templates_birthday_tier_id_member_tiers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
    )
    op.create_table(
        "coupon_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("target_name", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_coupon_issues_template_id_coupon_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_issues")),
    )
    op.create_table(
        "member_coupons",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("member_id", _BIG, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("amount_off_fen", sa.Integer(), nullable=False),
        sa.Column("percent_off_bp", sa.Integer(), nullable=False),
        sa.Column("max_off_fen", sa.Integer(), nullable=True),
        sa.Column("min_spend_fen", sa.Integer(), nullable=False),
        sa.Column("valid_from", _TS, nullable=False),
        sa.Column("valid_to", _TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("issue_key", sa.String(length=40), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("order_id", _BIG, nullable=True),
        sa.Column("discount_fen", sa.Integer(), nullable=True),
        sa.Column("redeemed_at", _TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('issued', 'redeemed', 'void')", name=op.f("ck_member_coupons_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_coupons_member_id_members"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_member_coupons_template_id_coupon_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_coupons")),
        sa.UniqueConstraint("code", name=op.f("uq_member_coupons_code")),
        sa.UniqueConstraint(
            "member_id", "issue_key", name=op.f("uq_member_coupons_member_id_issue_key")
        ),
    )
    with op.batch_alter_table("member_coupons", schema=None) as batch_op:
        batch_op.create_index("ix_member_coupons_member", ["member_id", "status"], unique=False)
        batch_op.create_index("ix_member_coupons_order", ["order_id"], unique=False)
    for role, perms in _GRANTS.items():
        for perm in perms:
            op.execute(
                "INSERT INTO role_permissions (role_id, permission) "
                f"SELECT r.id, '{perm}' FROM roles r WHERE r.code = '{role}' "
                "AND NOT EXISTS (SELECT 1 FROM role_permissions p "
                f"WHERE p.role_id = r.id AND p.permission = '{perm}')"
            )


def downgrade() -> None:
    op.execute("DELETE FROM role_permissions WHERE permission = 'member:marketing'")
    with op.batch_alter_table("member_coupons", schema=None) as batch_op:
        batch_op.drop_index("ix_member_coupons_order")
        batch_op.drop_index("ix_member_coupons_member")
    op.drop_table("member_coupons")
    op.drop_table("coupon_issues")
    op.drop_table("coupon_templates")
    op.drop_table("member_segments")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_member_created")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("merged_into_id")
