"""audit: the operation log's store and action indexes carry the time, so one store's or one
action's newest entries are an index range, not a sort of all of them (bench/bench_logs.py)

Revision ID: aud_0002
Revises: pay_0005
Create Date: 2026-12-06 17:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "aud_0002"
down_revision: str | Sequence[str] | None = "pay_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_logs") as batch_op:
        batch_op.create_index("ix_audit_logs_store_occurred", ["store_id", "occurred_at"])
        batch_op.create_index("ix_audit_logs_action_occurred", ["action", "occurred_at"])
        batch_op.drop_index("ix_audit_logs_store_id")
        batch_op.drop_index("ix_audit_logs_action")


def downgrade() -> None:
    with op.batch_alter_table("audit_logs") as batch_op:
        batch_op.create_index("ix_audit_logs_action", ["action"])
        batch_op.create_index("ix_audit_logs_store_id", ["store_id"])
        batch_op.drop_index("ix_audit_logs_action_occurred")
        batch_op.drop_index("ix_audit_logs_store_occurred")
