"""Demo stock: every store stocked through purchase receipts, suppliers and orders, some
alerts, the ledger balanced, and a second run adds nothing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.demo import DEMO_STORES, seed_demo
from selfmart.inventory.checks import find_mismatches
from selfmart.models import (
    PurchaseOrder,
    StockAlert,
    StockMovement,
    StockTransfer,
    Store,
    Supplier,
    SupplierProduct,
)


async def _counts(session: AsyncSession) -> tuple[int, ...]:
    out = []
    for model in (
        StockMovement,
        StockAlert,
        PurchaseOrder,
        Supplier,
        SupplierProduct,
        StockTransfer,
    ):
        out.append(int(await session.scalar(select(func.count()).select_from(model)) or 0))
    return tuple(out)


async def test_demo_stock_is_complete_balanced_and_idempotent(demo_session: AsyncSession) -> None:
    first = await _counts(demo_session)
    await seed_demo(demo_session)
    assert await _counts(demo_session) == first
    for code, *_ in DEMO_STORES:
        store_id = await demo_session.scalar(select(Store.id).where(Store.code == code))
        receipts = await demo_session.scalar(
            select(func.count()).where(
                StockMovement.store_id == store_id,
                StockMovement.kind == "purchase_receipt",
                StockMovement.document_type == "opening_stock",
            )
        )
        assert (receipts or 0) >= 200
        statuses = set(
            (
                await demo_session.scalars(
                    select(PurchaseOrder.status).where(PurchaseOrder.store_id == store_id)
                )
            ).all()
        )
        assert {"received", "submitted"} <= statuses
    assert await demo_session.scalar(select(func.count()).select_from(Supplier)) == 3
    kinds = set(
        (
            await demo_session.scalars(select(StockAlert.kind).where(StockAlert.status == "open"))
        ).all()
    )
    assert kinds == {"low_stock", "near_expiry"}
    assert (
        await demo_session.scalar(select(func.count()).where(StockTransfer.status == "in_transit"))
        == 1
    )
    assert await find_mismatches(demo_session) == []
