"""Proof that the cached balances are the ledger: every balance equals the sum of its movements.

Used by `selfmart check-stock` and by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import StockLevel, StockMovement


@dataclass(frozen=True, slots=True)
class Mismatch:
    store_id: int
    product_id: int
    #: the cached balance (0 when there is no balance row)
    balance: int
    #: the sum of the movements
    ledger_sum: int


async def find_mismatches(session: AsyncSession, store_id: int | None = None) -> list[Mismatch]:
    """Every (store, product) whose balance differs from its ledger, in one pass."""
    sums: Select[Any, Any, Any, Any] = select(
        StockMovement.store_id.label("store_id"),
        StockMovement.product_id.label("product_id"),
        func.sum(StockMovement.quantity).label("ledger"),
        literal_column("0").label("balance"),
    ).group_by(StockMovement.store_id, StockMovement.product_id)
    cached: Select[Any, Any, Any, Any] = select(
        StockLevel.store_id,
        StockLevel.product_id,
        literal_column("0").label("ledger"),
        StockLevel.quantity.label("balance"),
    )
    if store_id is not None:
        sums = sums.where(StockMovement.store_id == store_id)
        cached = cached.where(StockLevel.store_id == store_id)
    both = union_all(sums, cached).subquery()
    stmt = (
        select(
            both.c.store_id,
            both.c.product_id,
            func.sum(both.c.balance).label("balance"),
            func.sum(both.c.ledger).label("ledger"),
        )
        .group_by(both.c.store_id, both.c.product_id)
        .having(func.sum(both.c.balance) != func.sum(both.c.ledger))
        .order_by(both.c.store_id, both.c.product_id)
    )
    return [
        Mismatch(int(s), int(p), int(b or 0), int(led or 0))
        for s, p, b, led in (await session.execute(stmt)).all()
    ]
