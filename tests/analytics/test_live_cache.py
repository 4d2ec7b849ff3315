"""The live tail kept in process (analytics/live.py) is invalidated by the change feed: an order
paid or refunded after a read, by another process (here a second engine, with its own pool and
its own memory), shows up in the next read; a read with nothing new comes from memory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from selfmart.analytics import live, refresh, service
from selfmart.db import make_engine, make_sessionmaker
from selfmart.iam.actor import Actor
from selfmart.models import (
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    ProductBarcode,
    RefreshState,
    Refund,
    RefundLine,
    Store,
    StoreProduct,
)
from tests.analytics.builders import feed_event, refund, sale
from tests.builders import make_store
from tests.orders.builders import make_product

ACTOR = Actor(kind="user", id=None, name="test", store_ids=None)
DAY = date(2025, 5, 10)


@dataclass
class Shop:
    store_id: int
    product_id: int
    #: the other process: its own engine, so nothing it does touches the reader's memory
    writer: async_sessionmaker[AsyncSession]

    async def pay(self, quantity: int, *, member_id: int | None = None, event: bool = True) -> int:
        async with self.writer() as s:
            store = await s.get(Store, self.store_id)
            product = await s.get(Product, self.product_id)
            assert store is not None
            assert product is not None
            order = await sale(
                s,
                store,
                [(product, quantity)],
                paid_at=datetime(2025, 5, 10, 4, tzinfo=UTC),
                member_id=member_id,
            )
            if event:
                s.add(feed_event(order))
            await s.commit()
            return order.id

    async def refund(self, order_id: int, quantity: int) -> None:
        async with self.writer() as s:
            order = await s.get(Order, order_id)
            product = await s.get(Product, self.product_id)
            assert order is not None
            assert product is not None
            await refund(s, order, product, quantity, at=datetime(2025, 5, 10, 9, tzinfo=UTC))
            s.add(feed_event(order))
            await s.commit()

    async def event_for(self, order_id: int) -> None:
        async with self.writer() as s:
            order = await s.get(Order, order_id)
            assert order is not None
            s.add(feed_event(order))
            await s.commit()

    async def events_with_ids(self, order_id: int, *ids: int) -> None:
        """Change-feed rows of the order with these ids (as if committed late, below ids
        already seen, when an id is lower than the others)."""
        async with self.writer() as s:
            order = await s.get(Order, order_id)
            assert order is not None
            for event_id in ids:
                row = feed_event(order)
                row.id = event_id
                s.add(row)
            await s.commit()

    async def mark_and_free_id(self) -> tuple[int | None, int]:
        """The refresh mark as it is (to put back), and an event id far above every one."""
        async with self.writer() as s:
            state = await s.get(RefreshState, refresh.STATE)
            high = int(await s.scalar(select(func.max(OrderEvent.id))) or 0) + 1000
            return (None if state is None else state.last_event_id), high

    async def set_mark(self, event_id: int | None) -> None:
        """Move the refresh mark (as the refresh does), or take it away (None)."""
        async with self.writer() as s:
            await s.execute(delete(RefreshState).where(RefreshState.name == refresh.STATE))
            if event_id is not None:
                s.add(RefreshState(name=refresh.STATE, last_event_id=event_id))
            await s.commit()


@pytest.fixture
async def shop(engine: AsyncEngine, db_url: str) -> AsyncIterator[Shop]:
    """A store with one product, committed (the reader and the writer see it from their own
    connections); everything it and its orders wrote is deleted afterwards, and the reader's
    memory of the feed forgotten (the feed only grows in use: deleting its rows is the
    test's doing, and SQLite may give their ids again)."""
    async with make_sessionmaker(engine)() as s:
        live.forget(s)
    writer_engine = make_engine(db_url)
    writer = make_sessionmaker(writer_engine)
    async with writer() as s:
        store = await make_store(s, code=f"L{uuid.uuid4().hex[:6].upper()}", city="缓存")
        product = await make_product(s, stores=[store], price_fen=250)
        await s.commit()
        shop = Shop(store_id=store.id, product_id=product.id, writer=writer)
    try:
        yield shop
    finally:
        async with writer() as s:
            sid, pid = shop.store_id, shop.product_id
            orders = select(Order.id).where(Order.store_id == sid)
            refunds = select(Refund.id).where(Refund.order_id.in_(orders))
            await s.execute(delete(RefundLine).where(RefundLine.refund_id.in_(refunds)))
            await s.execute(delete(Refund).where(Refund.order_id.in_(orders)))
            await s.execute(delete(OrderEvent).where(OrderEvent.order_id.in_(orders)))
            await s.execute(delete(Payment).where(Payment.order_id.in_(orders)))
            await s.execute(delete(OrderLine).where(OrderLine.order_id.in_(orders)))
            await s.execute(delete(Order).where(Order.store_id == sid))
            await s.execute(delete(StoreProduct).where(StoreProduct.store_id == sid))
            await s.execute(delete(ProductBarcode).where(ProductBarcode.product_id == pid))
            await s.execute(delete(Product).where(Product.id == pid))
            await s.execute(delete(Store).where(Store.id == sid))
            await s.commit()
        await writer_engine.dispose()
        async with make_sessionmaker(engine)() as s:
            live.forget(s)


async def _day(engine: AsyncEngine, shop: Shop) -> dict[str, Any]:
    """The store's 10 May as the sales dashboard shows it, read in a transaction that writes
    nothing (as a console request does)."""
    async with make_sessionmaker(engine)() as s:
        got = await service.sales_series(
            s, actor=ACTOR, first=DAY, last=DAY, granularity="day", store_id=shop.store_id
        )
    current: dict[str, Any] = got["periods"][0]["current"]
    return current


async def _tail(engine: AsyncEngine) -> live.Tail:
    async with make_sessionmaker(engine)() as s:
        return live.tail_of(s)


async def test_an_order_paid_elsewhere_after_a_cached_read_shows_in_the_next(
    engine: AsyncEngine, shop: Shop
) -> None:
    first = await shop.pay(2, member_id=71)
    one = await _day(engine, shop)
    assert (one["orders"], one["sales_fen"], one["items"], one["paying_members"]) == (1, 500, 2, 1)

    tail = await _tail(engine)
    hits, computed = tail.hits, tail.computed
    assert await _day(engine, shop) == one  # nothing new in the feed: from memory
    assert (tail.hits, tail.computed) == (hits + 1, computed)

    await shop.pay(3, member_id=72)
    two = await _day(engine, shop)
    assert (two["orders"], two["sales_fen"], two["items"], two["paying_members"]) == (
        2,
        1250,
        5,
        2,
    )
    assert tail.computed == computed + 1  # the one store day the new event named

    await shop.refund(first, 1)
    three = await _day(engine, shop)
    assert (three["refunds"], three["refunds_fen"], three["sales_fen"]) == (1, 250, 1250)
    assert three["net_sales_fen"] == 1000


async def test_it_is_the_change_feed_that_invalidates(engine: AsyncEngine, shop: Shop) -> None:
    """An order committed without its change-feed row (which every payment writes with it)
    is not seen by a read from memory; its event, committed later, makes the next read see
    it. So the memory follows the feed, which every process writes, and not anything this
    process did."""
    await shop.pay(1)
    before = await _day(engine, shop)
    assert before["orders"] == 1
    late = await shop.pay(4, event=False)
    assert await _day(engine, shop) == before
    await shop.event_for(late)
    after = await _day(engine, shop)
    assert (after["orders"], after["sales_fen"], after["items"]) == (2, 1250, 5)


async def test_a_transaction_that_wrote_reads_afresh_and_leaves_the_memory_alone(
    engine: AsyncEngine, shop: Shop
) -> None:
    await shop.pay(1)
    seen = await _day(engine, shop)
    async with make_sessionmaker(engine)() as s:
        store = await s.get(Store, shop.store_id)
        product = await s.get(Product, shop.product_id)
        assert store is not None
        assert product is not None
        order = await sale(s, store, [(product, 6)], paid_at=datetime(2025, 5, 10, 5, tzinfo=UTC))
        s.add(feed_event(order))
        await s.flush()
        got = await service.sales_series(
            s, actor=ACTOR, first=DAY, last=DAY, granularity="day", store_id=shop.store_id
        )
        assert got["periods"][0]["current"]["orders"] == 2  # its own uncommitted order
        await s.rollback()
    assert await _day(engine, shop) == seen  # the rolled-back order left no trace


async def _product_day(engine: AsyncEngine, shop: Shop) -> dict[str, Any]:
    """The product's 10 May in its store (its statistics read its own rows of the live days:
    a memory of their own, the product's), in a transaction that writes nothing."""
    async with make_sessionmaker(engine)() as s:
        got = await service.sales_series(
            s,
            actor=ACTOR,
            first=DAY,
            last=DAY,
            granularity="day",
            store_id=shop.store_id,
            product_id=shop.product_id,
        )
    current: dict[str, Any] = got["periods"][0]["current"]
    return current


async def test_a_products_live_days_are_kept_and_invalidated_by_the_feed_too(
    engine: AsyncEngine, shop: Shop
) -> None:
    first = await shop.pay(2, member_id=81)
    one = await _product_day(engine, shop)
    assert (one["orders"], one["sales_fen"], one["items"], one["paying_members"]) == (1, 500, 2, 1)
    async with make_sessionmaker(engine)() as s:
        tail = live.tail_of(s, ("product", shop.product_id))
    hits, computed = tail.hits, tail.computed
    assert await _product_day(engine, shop) == one  # nothing new in the feed: from memory
    assert (tail.hits, tail.computed) == (hits + 1, computed)

    await shop.pay(3, member_id=82)  # another process
    two = await _product_day(engine, shop)
    assert (two["orders"], two["sales_fen"], two["items"], two["paying_members"]) == (
        2,
        1250,
        5,
        2,
    )
    assert tail.computed == computed + 1

    await shop.refund(first, 1)
    three = await _product_day(engine, shop)
    assert (three["refunds"], three["refunds_fen"], three["sales_fen"]) == (1, 250, 1250)


async def test_only_the_products_and_categories_asked_for_lately_keep_their_tails(
    engine: AsyncEngine,
) -> None:
    async with make_sessionmaker(engine)() as s:
        live.forget(s)
        sales = live.tail_of(s, live.SALES)
        oldest = live.tail_of(s, ("product", 1))
        kept = live.tail_of(s, ("category", 1))
        for i in range(2, live.SCOPED_TAILS + 1):
            live.tail_of(s, ("product", i))
            assert live.tail_of(s, ("category", 1)) is kept  # asked again: stays
        assert live.tail_of(s, live.SALES) is sales
        assert live.tail_of(s, ("product", 1)) is not oldest  # the least recently asked went
        live.forget(s)


async def test_when_the_refresh_moves_its_mark_the_days_still_live_are_kept(
    engine: AsyncEngine, shop: Shop
) -> None:
    """The mark moves (the refresh took events in) while an event seen after it keeps the
    store day live: the day's rows stay in memory. But an event below the new mark that this
    process never saw (committed late, below ids already seen) makes the day recomputed."""
    saved, high = await shop.mark_and_free_id()
    first = await shop.pay(2, event=False)
    late = await shop.pay(3, event=False)

    try:
        await shop.set_mark(high)
        await shop.events_with_ids(first, high + 10)  # keeps 10 May live past every mark below
        tail = await _tail(engine)
        one = await _day(engine, shop)
        assert (one["orders"], one["items"]) == (2, 5)  # both orders: the day is read whole
        computed = tail.computed

        await shop.set_mark(high + 1)  # nothing between the marks: the day is kept
        assert await _day(engine, shop) == one
        assert tail.computed == computed
        assert tail.mark == high + 1

        # An event below the new mark, committed after the read: the day is recomputed.
        await shop.refund(late, 1)  # the order's only event, given an id below the mark
        async with shop.writer() as s:
            await s.execute(
                update(OrderEvent).where(OrderEvent.order_id == late).values(id=high + 5)
            )
            await s.commit()
        await shop.set_mark(high + 6)
        two = await _day(engine, shop)
        assert (two["orders"], two["refunds"], two["refunds_fen"]) == (2, 1, 250)
        assert tail.computed == computed + 1
    finally:
        await shop.set_mark(saved)


async def test_a_store_moved_to_another_time_zone_starts_the_memory_again(
    engine: AsyncEngine, shop: Shop
) -> None:
    await shop.pay(2)  # 04:00 UTC on 10 May: noon in Shanghai
    assert (await _day(engine, shop))["orders"] == 1
    async with shop.writer() as s:
        store = await s.get(Store, shop.store_id)
        assert store is not None
        store.timezone = "America/Los_Angeles"  # 21:00 on 9 May there
        await s.commit()
    assert (await _day(engine, shop))["orders"] == 0


async def test_a_mark_that_jumps_further_than_a_tail_checks_starts_it_again(
    engine: AsyncEngine, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved, high = await shop.mark_and_free_id()
    first = await shop.pay(2, event=False)
    other = await shop.pay(1, event=False)
    async with shop.writer() as s:  # a day before: its events do not touch the live day
        await s.execute(
            update(Order)
            .where(Order.id == other)
            .values(paid_at=datetime(2025, 5, 9, 4, tzinfo=UTC))
        )
        await s.commit()

    try:
        await shop.set_mark(high)
        await shop.events_with_ids(first, high + 10)
        tail = await _tail(engine)
        await _day(engine, shop)
        computed = tail.computed
        await shop.events_with_ids(other, high + 1, high + 2)  # two events between the marks
        monkeypatch.setattr(live, "MOVE_LIMIT", 1)
        await shop.set_mark(high + 5)
        await _day(engine, shop)
        assert tail.computed == computed + 1  # started again: the live day recomputed
        assert tail.seen == {high + 10}
    finally:
        await shop.set_mark(saved)
