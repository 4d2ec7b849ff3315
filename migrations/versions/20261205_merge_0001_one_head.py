"""merge the domains' branches into one head

The foundation's first migrations were written in parallel per domain (jobs, orders,
inventory); from here on a new migration revises this one, so `alembic upgrade head` and
`downgrade -1` mean one thing.

Revision ID: merge_0001
Revises: aj_0001, ord_0001, inv_0002
Create Date: 2026-12-05 08:10:00
"""

from collections.abc import Sequence

revision: str = "merge_0001"
down_revision: str | Sequence[str] | None = ("aj_0001", "ord_0001", "inv_0002")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
