"""audit: entries name their entity (entity_label: a product's name, an order's number), and
the entries already written are named from the entities that still exist

Revision ID: aud_0001
Revises: ord_0002
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "aud_0001"
down_revision: str | Sequence[str] | None = "ord_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: entity type -> (table, label column), as selfmart.audit.labels names them today
LABELS = {
    "product": ("products", "name"),
    "category": ("categories", "name"),
    "tag": ("tags", "name"),
    "order": ("orders", "order_no"),
    "purchase_order": ("purchase_orders", "number"),
    "stock_transfer": ("stock_transfers", "number"),
    "stocktake": ("stocktakes", "number"),
    "supplier": ("suppliers", "name"),
    "store": ("stores", "name"),
    "terminal": ("terminals", "code"),
    "user": ("users", "display_name"),
    "role": ("roles", "name"),
    "stock_alert_route": ("stock_alert_routes", "name"),
    "payment_account": ("payment_accounts", "name"),
}


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy of what may be the largest table) works on both.
    op.add_column("audit_logs", sa.Column("entity_label", sa.String(length=200), nullable=True))
    bind = op.get_bind()
    tables = set(sa.inspect(bind).get_table_names())
    for entity_type, (table, column) in LABELS.items():
        if table not in tables:
            continue
        # One set-based UPDATE per type, joined on the (entity_type, entity_id) index.
        op.execute(
            sa.text(
                f"UPDATE audit_logs SET entity_label = substr(t.{column}, 1, 200) "  # noqa: S608
                f"FROM {table} AS t WHERE audit_logs.entity_type = :entity_type "
                "AND audit_logs.entity_id = CAST(t.id AS VARCHAR(64))"
            ).bindparams(entity_type=entity_type)
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_column("entity_label")
