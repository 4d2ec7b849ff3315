"""behaviour: the business log of terminal events (scans, checkouts, payment attempts)

Revision ID: beh_0001
Revises: ana_0002
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import selfmart.db

revision: str = "beh_0001"
down_revision: str | Sequence[str] | None = "ana_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "behaviour_events",
        sa.Column("id", BIG, primary_key=True, autoincrement=True),
        sa.Column(
            "store_id",
            sa.Integer(),
            sa.ForeignKey("stores.id", name="fk_behaviour_events_store_id_stores"),
            nullable=False,
        ),
        sa.Column(
            "terminal_id",
            sa.Integer(),
            sa.ForeignKey("terminals.id", name="fk_behaviour_events_terminal_id_terminals"),
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", selfmart.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("order_no", sa.String(length=32), nullable=True),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("qty", sa.Integer(), nullable=True),
        sa.Column("amount_fen", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_behaviour_events"),
        sa.UniqueConstraint(
            "terminal_id", "event_id", name="uq_behaviour_events_terminal_id_event_id"
        ),
    )
    op.create_index(
        "ix_behaviour_events_store_occurred", "behaviour_events", ["store_id", "occurred_at"]
    )
    op.create_index("ix_behaviour_events_occurred_at", "behaviour_events", ["occurred_at"])
    op.create_index("ix_behaviour_events_session", "behaviour_events", ["session_id"])


def downgrade() -> None:
    op.drop_table("behaviour_events")
