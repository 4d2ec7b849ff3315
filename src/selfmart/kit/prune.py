"""Deleting old rows of a big log table in short batches, each its own transaction, so no
lock is held for long and the table stays writable while it is pruned (docs/operations.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def delete_older(
    sessionmaker: async_sessionmaker[AsyncSession],
    table: Table,
    column: str,
    cutoff: datetime,
    *,
    batch: int,
    where: ColumnElement[bool] | None = None,
) -> tuple[int, int]:
    """Delete the rows whose `column` is before `cutoff` (and match `where`), at most `batch`
    rows (oldest ids first) per transaction. Returns (rows deleted, transactions used)."""
    conditions = [table.c[column] < cutoff]
    if where is not None:
        conditions.append(where)
    deleted = transactions = 0
    while True:
        ids = select(table.c.id).where(*conditions).order_by(table.c.id).limit(batch)
        async with sessionmaker() as session:
            result = await session.execute(
                delete(table)
                .where(table.c.id.in_(ids.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        transactions += 1
        count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < batch:
            return deleted, transactions
