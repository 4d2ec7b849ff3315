"""Stock deduction under real concurrency on PostgreSQL: committed data, separate connections.

200 sales race for 50 units with refusal on: exactly 50 succeed, the shelf ends at zero and
the ledger balances. Multi-line sales taking the same rows in opposite orders never deadlock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from selfmart.db import make_engine, make_sessionmaker
from selfmart.inventory import ledger
from selfmart.inventory import service as inventory
from selfmart.inventory.checks import find_mismatches
from selfmart.kit.time import utcnow
from selfmart.models import (
    OutboxEvent,
    Product,
    StockAlert,
    StockDiscrepancy,
    StockLevel,
    StockMovement,
    Store,
)
from selfmart.orders import stock

from .builders import CLERK

pytestmark = pytest.mark.postgres_only


@dataclass
class Shelf:
    engine: AsyncEngine
    store_ids: list[int]
    product_ids: list[int]


@pytest.fixture
async def shelf(engine: AsyncEngine, backend: str) -> AsyncIterator[Shelf]:
    """Two stores (refusal on / negative allowed) and two products with 50 units each,
    committed; everything it made is deleted afterwards."""
    if backend != "postgresql":
        pytest.skip("needs real concurrent connections (PostgreSQL); SQLite serialises writers")
    url = engine.url.render_as_string(hide_password=False)
    racers = make_engine(url, pool_size=40, max_overflow=0)
    factory = make_sessionmaker(racers)
    tag = uuid.uuid4().hex[:6].upper()
    async with factory() as s:
        strict = Store(code=f"RACE{tag}A", name="race strict", allow_negative_stock=False)
        loose = Store(code=f"RACE{tag}B", name="race loose", allow_negative_stock=True)
        products = [Product(name=f"race {tag} {i}", price_fen=100) for i in range(2)]
        s.add_all([strict, loose, *products])
        await s.flush()
        for store in (strict, loose):
            await inventory.receive(
                s,
                store_id=store.id,
                lines=[inventory.ReceiptLine(p.id, 50) for p in products],
                document=("race", tag),
                actor=CLERK,
            )
        await s.commit()
        store_ids, product_ids = [strict.id, loose.id], [p.id for p in products]
    try:
        yield Shelf(racers, store_ids, product_ids)
    finally:
        async with factory() as s:
            for model in (StockMovement, StockDiscrepancy, StockAlert, StockLevel):
                await s.execute(delete(model).where(model.store_id.in_(store_ids)))
            await s.execute(delete(OutboxEvent).where(OutboxEvent.topic.like("inventory.%")))
            await s.execute(delete(Product).where(Product.id.in_(product_ids)))
            await s.execute(delete(Store).where(Store.id.in_(store_ids)))
            await s.commit()
        await racers.dispose()


async def _sale(
    shelf: Shelf, store_id: int, lines: list[tuple[int, int]], allow_negative: bool, n: int
) -> bool:
    factory = make_sessionmaker(shelf.engine)
    async with factory() as s:
        result = await inventory.deduct_for_sale(
            s,
            store_id=store_id,
            lines=lines,
            document=("order", n),
            actor=CLERK,
            allow_negative=allow_negative,
        )
        if result.ok:
            await s.commit()
        else:
            await s.rollback()
        return result.ok


async def test_200_concurrent_sales_against_50_units_with_refusal(shelf: Shelf) -> None:
    store_id, product_id = shelf.store_ids[0], shelf.product_ids[0]
    results = await asyncio.gather(
        *(_sale(shelf, store_id, [(product_id, 1)], False, n) for n in range(200))
    )
    assert sum(results) == 50
    factory = make_sessionmaker(shelf.engine)
    async with factory() as s:
        assert (await inventory.balances(s, store_id, [product_id]))[product_id] == 0
        sales = await s.scalar(
            select(func.count()).where(
                StockMovement.store_id == store_id,
                StockMovement.product_id == product_id,
                StockMovement.kind == "sale",
            )
        )
        assert sales == 50
        ledger = await s.scalar(
            select(func.sum(StockMovement.quantity)).where(
                StockMovement.store_id == store_id, StockMovement.product_id == product_id
            )
        )
        assert ledger == 0
        # the balance after each sale is distinct: 49, 48, ... 0 (no lost update)
        afters = (
            await s.scalars(
                select(StockMovement.balance_after).where(
                    StockMovement.store_id == store_id, StockMovement.kind == "sale"
                )
            )
        ).all()
        assert sorted(afters) == list(range(50))
        assert await find_mismatches(s, store_id) == []
        alerts = await s.scalar(
            select(func.count()).where(StockAlert.store_id == store_id, StockAlert.status == "open")
        )
        assert alerts == 1  # sold out once: one alert


async def test_multi_line_sales_in_opposite_orders_do_not_deadlock(shelf: Shelf) -> None:
    store_id = shelf.store_ids[0]
    a, b = shelf.product_ids
    results = await asyncio.gather(
        *(
            _sale(shelf, store_id, [(a, 1), (b, 1)] if n % 2 else [(b, 1), (a, 1)], False, n)
            for n in range(80)
        )
    )
    assert sum(results) == 50
    factory = make_sessionmaker(shelf.engine)
    async with factory() as s:
        assert await inventory.balances(s, store_id, [a, b]) == {a: 0, b: 0}
        assert await find_mismatches(s, store_id) == []


async def test_concurrent_sales_past_the_shelf_are_all_booked_when_the_store_allows(
    shelf: Shelf,
) -> None:
    store_id, product_id = shelf.store_ids[1], shelf.product_ids[0]
    results = await asyncio.gather(
        *(_sale(shelf, store_id, [(product_id, 1)], True, n) for n in range(80))
    )
    assert all(results)
    factory = make_sessionmaker(shelf.engine)
    async with factory() as s:
        assert (await inventory.balances(s, store_id, [product_id]))[product_id] == -30
        short = await s.scalar(
            select(func.sum(StockDiscrepancy.short_by)).where(StockDiscrepancy.store_id == store_id)
        )
        assert short == 30
        assert await find_mismatches(s, store_id) == []


async def test_two_write_offs_of_the_same_batch_at_once_write_it_off_once(shelf: Shelf) -> None:
    """Two people write off what is left of one expiring batch at the same moment: the batch
    goes once; the second finds it gone (a 409, not the 500 it was: it read the batch before
    waiting for the lock), and the shelf is not written off twice."""
    from datetime import timedelta

    from selfmart.errors import AppError
    from selfmart.inventory import batches
    from selfmart.kit.time import utcnow
    from selfmart.models import StockBatch

    factory = make_sessionmaker(shelf.engine)
    store_id, product_id = shelf.store_ids[1], shelf.product_ids[0]  # 50 units, no batch yet
    async with factory() as s:
        product = await s.get_one(Product, product_id)
        product.track_batches = True
        await s.flush()
        await inventory.receive(
            s,
            store_id=store_id,
            lines=[inventory.ReceiptLine(product_id, 10, utcnow().date() + timedelta(days=1), "X")],
            document=("race", "batch"),
            actor=CLERK,
        )
        await s.commit()
        batch_id = await s.scalar(
            select(StockBatch.id).where(
                StockBatch.store_id == store_id, StockBatch.product_id == product_id
            )
        )
    assert batch_id is not None

    async def write_off() -> str:
        async with factory() as s:
            try:
                await batches.write_off_batch(s, store_id, batch_id, actor=CLERK, reason="临期")
            except AppError as exc:
                await s.rollback()
                return exc.code
            await s.commit()
            return "written_off"

    try:
        outcomes = await asyncio.gather(write_off(), write_off())
        async with factory() as s:
            batch = await s.get_one(StockBatch, batch_id)
            balance = await inventory.balances(s, store_id, [product_id])
        assert sorted(outcomes)[-1] == "written_off"
        assert outcomes.count("written_off") == 1
        assert batch.quantity_written_off == 10
        assert balance == {product_id: 50}  # 60 received in all, 10 written off once
    finally:
        async with factory() as s:
            await s.execute(delete(StockBatch).where(StockBatch.store_id == store_id))
            await s.commit()


async def test_a_batch_holding_its_rows_and_a_sale_creating_one_do_not_deadlock(
    shelf: Shelf,
) -> None:
    """A store that sells past an empty shelf: a sale creates the balance row of a product
    never stocked (x, the smaller id) and then takes a stocked one (y); meanwhile a batch holds
    its rows before its first order, then sells both. Holding only the rows that exist took y
    first and waited for x (the sale's, uncommitted) while the sale waited for y: a deadlock,
    one of them refused (CI caught it once in the batch-upload test). Holding creates x in
    order, so the batch waits for the sale, and both are booked."""
    store_id = shelf.store_ids[1]  # negative stock allowed
    factory = make_sessionmaker(shelf.engine)
    tag = uuid.uuid4().hex[:6]
    async with factory() as s:
        x = Product(name=f"race {tag} never stocked", price_fen=100)
        s.add(x)
        await s.flush()
        y = Product(name=f"race {tag} stocked", price_fen=100)
        s.add(y)
        await s.flush()
        await inventory.receive(
            s,
            store_id=store_id,
            lines=[inventory.ReceiptLine(y.id, 10)],
            document=("race", tag),
            actor=CLERK,
        )
        await s.commit()
        x_id, y_id = x.id, y.id
    assert x_id < y_id
    now = utcnow()
    try:
        async with factory() as sale, factory() as batch:
            await ledger.add(sale, store_id, x_id, -1, now)  # creates x's row, not committed

            async def upload() -> None:
                await stock.hold(
                    batch, store_id=store_id, product_ids=[y_id, x_id], create=True, now=now
                )
                await ledger.add(batch, store_id, x_id, -1, now)
                await ledger.add(batch, store_id, y_id, -1, now)
                await batch.commit()

            uploading = asyncio.create_task(upload())
            await asyncio.sleep(0.3)  # the batch is holding (or waiting to hold) its rows
            await asyncio.wait_for(ledger.add(sale, store_id, y_id, -1, now), timeout=30)
            await sale.commit()
            await asyncio.wait_for(uploading, timeout=30)
        async with factory() as s:
            assert await inventory.balances(s, store_id, [x_id, y_id]) == {x_id: -2, y_id: 8}
    finally:
        async with factory() as s:
            for model in (StockMovement, StockLevel):
                await s.execute(delete(model).where(model.product_id.in_([x_id, y_id])))
            await s.execute(delete(Product).where(Product.id.in_([x_id, y_id])))
            await s.commit()
