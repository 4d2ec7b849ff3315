"""members at the terminal: the per-member secret of the dynamic member code and the last time
step used (one use per step), SMS sign-in codes, and the points redemption rule

Revision ID: mem_0002
Revises: set_0001
Create Date: 2026-12-06 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import selfmart.db

revision: str = "mem_0002"
down_revision: str | Sequence[str] | None = "set_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("code_secret", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("code_last_step", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("member_program") as batch:
        batch.add_column(
            sa.Column("redeem_points_per_yuan", sa.Integer(), nullable=False, server_default="100")
        )
        batch.add_column(
            sa.Column("redeem_max_share_bp", sa.Integer(), nullable=False, server_default="5000")
        )
        batch.create_check_constraint(
            "redeem_rule_range",
            "redeem_points_per_yuan >= 1 AND redeem_max_share_bp >= 0 "
            "AND redeem_max_share_bp <= 10000",
        )
    op.create_table(
        "member_sms_codes",
        sa.Column("id", _BIG, autoincrement=True, nullable=False),
        sa.Column("mobile", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", selfmart.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_sms_codes")),
    )
    op.create_index("ix_member_sms_codes_mobile", "member_sms_codes", ["mobile", "purpose", "id"])


def downgrade() -> None:
    op.drop_index("ix_member_sms_codes_mobile", table_name="member_sms_codes")
    op.drop_table("member_sms_codes")
    with op.batch_alter_table("member_program") as batch:
        batch.drop_constraint("redeem_rule_range", type_="check")
        batch.drop_column("redeem_max_share_bp")
        batch.drop_column("redeem_points_per_yuan")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("code_last_step")
        batch.drop_column("code_secret")
