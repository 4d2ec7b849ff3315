"""job runs fail with an error code and details, not the server's text

Revision ID: aj_0002
Revises: rec_0001
Create Date: 2026-12-06 04:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "aj_0002"
down_revision: str | Sequence[str] | None = "rec_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column(
                "error_details",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
    # Runs that failed before: their text is no reader's language; they read as internal_error.
    op.execute(
        "UPDATE job_runs SET error_code = 'internal_error' "
        "WHERE status = 'failed' AND error_code IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_column("error_details")
        batch.drop_column("error_code")
