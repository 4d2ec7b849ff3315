"""notify: images shown inline with a delivery (the daily report's chart), so that a report
sent through the outbox is retried with its chart

Revision ID: ana_0005
Revises: ana_0004
Create Date: 2026-12-06 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ana_0005"
down_revision: str | Sequence[str] | None = "ana_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_images",
        sa.Column("id", ID, nullable=False),
        sa.Column("delivery_id", ID, nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("subtype", sa.String(length=16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["notification_deliveries.id"],
            name=op.f("fk_notification_images_delivery_id_notification_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_images")),
    )
    with op.batch_alter_table("notification_images") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_images_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_images") as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_images_delivery_id"))
    op.drop_table("notification_images")
