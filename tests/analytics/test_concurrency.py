"""Real concurrent connections on PostgreSQL: rebuilds and refreshes started at once wait for
each other (a row lock) instead of deleting and inserting the same days together."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.analytics import refresh
from selfmart.db import make_sessionmaker
from selfmart.models import (
    HourCell,
    MemberDay,
    Order,
    OrderLine,
    Payment,
    Product,
    ProductBarcode,
    ProductDay,
    SalesDay,
    Store,
    StoreProduct,
)
from tests.analytics.builders import sale
from tests.orders.builders import make_product

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def store_id(engine: AsyncEngine, backend: str) -> AsyncIterator[int]:
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    factory = make_sessionmaker(engine)
    async with factory() as s:
        store = Store(code=f"A{uuid.uuid4().hex[:6].upper()}", name="并发统计店", city="上海")
        s.add(store)
        await s.flush()
        cola = await make_product(s, stores=[store], price_fen=350)
        for day in range(1, 29):
            await sale(s, store, [(cola, day)], paid_at=datetime(2025, 2, day, 4, tzinfo=UTC))
        await s.commit()
        sid, pid = store.id, cola.id
    yield sid
    async with factory() as s:
        ids = select(Order.id).where(Order.store_id == sid)
        await s.execute(delete(Payment).where(Payment.order_id.in_(ids)))
        await s.execute(delete(OrderLine).where(OrderLine.order_id.in_(ids)))
        await s.execute(delete(Order).where(Order.store_id == sid))
        for model in (SalesDay, ProductDay, MemberDay, HourCell):
            await s.execute(delete(model).where(model.store_id == sid))
        await s.execute(delete(StoreProduct).where(StoreProduct.store_id == sid))
        await s.execute(delete(ProductBarcode).where(ProductBarcode.product_id == pid))
        await s.execute(delete(Product).where(Product.id == pid))
        await s.execute(delete(Store).where(Store.id == sid))
        await s.commit()


async def test_rebuilds_and_refreshes_at_once_give_one_set_of_rows(
    engine: AsyncEngine, store_id: int
) -> None:
    factory = make_sessionmaker(engine)

    async def rebuild() -> int:
        async with factory() as s:
            days = await refresh.rebuild(s)
            await s.commit()
            return days

    async def refresh_once() -> int:
        async with factory() as s:
            days = await refresh.refresh(s)
            await s.commit()
            return days

    results = await asyncio.gather(rebuild(), rebuild(), refresh_once(), rebuild())
    assert all(isinstance(r, int) for r in results)
    async with factory() as s:
        rows = (
            await s.execute(
                select(SalesDay.day, SalesDay.orders, SalesDay.sales_fen)
                .where(SalesDay.store_id == store_id)
                .order_by(SalesDay.day)
            )
        ).all()
        assert [(r.day.day, r.orders, r.sales_fen) for r in rows] == [
            (d, 1, 350 * d) for d in range(1, 29)
        ]
        assert (await refresh.check(s)).differences == []
