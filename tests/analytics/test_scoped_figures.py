"""A category (with everything below it) and a product have every figure a store has: orders
counted once however many of the subtree's products they hold, refunds counted once however
many of its lines they touch, paying members distinct over days and stores. Orders with known
totals in two Shanghai stores over ISO week 15 of 2025 (Monday 7 to Sunday 13 April)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh, scoped_days, scoped_live, summaries
from selfmart.models import (
    Category,
    CategoryDay,
    CategoryMember,
    Order,
    OrderLine,
    Product,
    ProductDay,
    ProductMember,
    RefreshState,
    Store,
)
from tests.analytics.builders import feed_event, refund_lines, sale
from tests.analytics.test_statistics import figures, utc
from tests.builders import auth_headers, make_store, make_user
from tests.catalog.helpers import make_category
from tests.orders.builders import make_product

WEEK = {"start": "2025-04-07", "end": "2025-04-13", "granularity": "week"}


@dataclass
class Shop:
    a: Store
    b: Store
    food: Category
    drinks: Category
    soda: Category
    snacks: Category
    cola: Product
    tea: Product
    chips: Product


async def build(session: AsyncSession) -> Shop:
    a = await make_store(session, name="A", city="上海", timezone="Asia/Shanghai")
    b = await make_store(session, name="B", city="上海", timezone="Asia/Shanghai")
    food = await make_category(session, "食品")
    drinks = await make_category(session, "饮料", parent=food)
    soda = await make_category(session, "汽水", parent=drinks)
    snacks = await make_category(session, "零食")
    cola = await make_product(session, name="可乐", price_fen=350, stores=[a, b])
    tea = await make_product(session, name="绿茶", price_fen=300, stores=[a, b])
    chips = await make_product(session, name="薯片", price_fen=800, stores=[a, b])
    cola.category_id, tea.category_id, chips.category_id = soda.id, drinks.id, snacks.id
    await session.flush()
    # Monday 10:00 in Shanghai, member 7: two products of the drinks: one order of it.
    o1 = await sale(session, a, [(cola, 2), (tea, 1)], paid_at=utc(2025, 4, 7, 2), member_id=7)
    # Wednesday, member 7 again, in the other store; member 8 in the first.
    await sale(session, b, [(cola, 1), (chips, 1)], paid_at=utc(2025, 4, 9, 2), member_id=7)
    await sale(session, a, [(tea, 2)], paid_at=utc(2025, 4, 9, 4), member_id=8)
    # Thursday, a guest.
    o4 = await sale(session, a, [(cola, 1)], paid_at=utc(2025, 4, 10, 2))
    # Not sales: cancelled before paying; closed (a late payment given back).
    await sale(
        session, a, [(cola, 5)], paid_at=None, status="cancelled", created_at=utc(2025, 4, 10, 3)
    )
    await sale(session, a, [(tea, 4)], paid_at=utc(2025, 4, 10, 5), status="closed", member_id=9)
    # Friday: one refund of a can and a tea from the first order (one refund of the drinks
    # and of food, one of soda), and the guest's can.
    await refund_lines(session, o1, [(cola, 1), (tea, 1)], at=utc(2025, 4, 11, 2))
    await refund_lines(session, o4, [(cola, 1)], at=utc(2025, 4, 11, 3))
    await refresh.rebuild(session)
    return Shop(a, b, food, drinks, soda, snacks, cola, tea, chips)


async def _get(client: httpx.AsyncClient, h: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await client.get("/api/v1/analytics/sales", params=params, headers=h)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _week(client: httpx.AsyncClient, h: dict[str, str], **params: Any) -> dict[str, Any]:
    body = await _get(client, h, **WEEK, **params)
    return body["periods"][0]["current"]  # type: ignore[no-any-return]


async def test_a_category_and_a_product_have_every_figure(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shop = await build(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    # Soda: orders 1, 2 and 4; refunds 1 and 2 (350 + 350); member 7 on two days in two
    # stores is one paying member of the week. 1400 / 3 = 466.67: 467 fen.
    soda = figures(3, 1400, 2, 700, 4, 467, "1.33", 1, None)
    assert await _week(client, h, category_id=shop.soda.id) == soda
    assert await _week(client, h, product_id=shop.cola.id) == soda
    # Drinks (soda below it, and tea): the first order holds both and is one order; the
    # first refund touches both and is one refund; members 7 and 8.
    drinks = figures(4, 2300, 2, 1000, 7, 575, "1.75", 2, None)
    assert await _week(client, h, category_id=shop.drinks.id) == drinks
    # Food, the root above drinks, holds the same.
    assert await _week(client, h, category_id=shop.food.id) == drinks
    assert await _week(client, h, category_id=shop.snacks.id) == figures(
        1, 800, 0, 0, 1, 800, "1.00", 1, None
    )
    # Tea: two orders, one refund of one tea, members 7 and 8.
    assert await _week(client, h, product_id=shop.tea.id) == figures(
        2, 900, 1, 300, 3, 450, "1.50", 2, None
    )
    # One store: the second store's only drinks order is member 7's Wednesday.
    assert await _week(client, h, category_id=shop.drinks.id, store_id=shop.b.id) == figures(
        1, 350, 0, 0, 1, 350, "1.00", 1, None
    )

    # By day: members per day, a refund day with no order; the week's total stays distinct.
    body = await _get(client, h, start="2025-04-07", end="2025-04-13", category_id=shop.drinks.id)
    days = {p["period"]: p["current"] for p in body["periods"]}
    assert days["2025-04-07"] == figures(1, 1000, 0, 0, 3, 1000, "3.00", 1, None)
    assert days["2025-04-09"] == figures(2, 950, 0, 0, 3, 475, "1.50", 2, None)
    assert days["2025-04-10"] == figures(1, 350, 0, 0, 1, 350, "1.00", 0, None)
    assert days["2025-04-11"] == figures(0, 0, 2, 1000, 0, 0, "0.00", 0, None)
    assert days["2025-04-12"] == figures(0, 0, 0, 0, 0, 0, "0.00", 0, None)
    assert sum(d["paying_members"] for d in days.values()) == 3
    assert body["total"]["current"] == drinks
    # The week before had nothing; by month, April holds the same as the week.
    assert body["total"]["previous"] == figures(0, 0, 0, 0, 0, 0, "0.00", 0, None)
    april = await _get(
        client, h, start="2025-04-01", end="2025-04-30", granularity="month",
        product_id=shop.cola.id,
    )  # fmt: skip
    assert april["periods"][0]["current"] == soda


async def test_the_rebuild_the_refresh_and_the_check_keep_the_new_rows(
    session: AsyncSession,
) -> None:
    """The rebuild (INSERT … SELECT on PostgreSQL, Python batches on SQLite) writes what
    `summaries.compute` says; the check names a tampered row of each new table."""
    shop = await build(session)
    keys = await summaries.stored_days(session)
    have = await summaries.stored(session, keys)
    want = await summaries.compute(session, keys)
    assert refresh.compare(have, want) == []
    assert have.categories == want.categories
    assert have.category_members == want.category_members
    assert have.product_members == want.product_members
    assert {k: r["refunds"] for k, r in have.products.items() if r["refunds"]} == {
        (shop.a.id, date(2025, 4, 11), shop.cola.id): 2,
        (shop.a.id, date(2025, 4, 11), shop.tea.id): 1,
    }
    monday, wednesday = date(2025, 4, 7), date(2025, 4, 9)
    a = shop.a.id
    assert have.categories[(a, monday, shop.food.id)] == {
        "orders": 1, "items": 3, "sales_fen": 1000, "refunds": 0, "refunds_fen": 0,
    }  # fmt: skip
    assert {k for k in have.category_members if k[1] == wednesday} == {
        (shop.b.id, wednesday, c, 7) for c in (shop.food.id, shop.drinks.id, shop.soda.id,
                                              shop.snacks.id)
    } | {(a, wednesday, c, 8) for c in (shop.food.id, shop.drinks.id)}  # fmt: skip
    assert (await refresh.check(session)).differences == []

    # A refresh with nothing new, and again, leaves every row as it was.
    await refresh.refresh(session)
    await refresh.refresh(session)
    again = await summaries.stored(session, keys)
    assert (again.categories, again.category_members, again.product_members) == (
        have.categories,
        have.category_members,
        have.product_members,
    )

    await session.execute(
        update(CategoryDay)
        .where(CategoryDay.store_id == a, CategoryDay.day == monday)
        .where(CategoryDay.category_id == shop.drinks.id)
        .values(orders=2)
    )
    await session.execute(
        delete(CategoryMember).where(
            CategoryMember.store_id == a,
            CategoryMember.day == wednesday,
            CategoryMember.member_id == 8,
            CategoryMember.category_id == shop.food.id,
        )
    )
    await session.execute(
        update(ProductMember)
        .where(ProductMember.store_id == a, ProductMember.product_id == shop.cola.id)
        .values(orders=ProductMember.orders + 4)
    )
    await session.execute(
        update(ProductDay)
        .where(ProductDay.store_id == a, ProductDay.product_id == shop.tea.id)
        .where(ProductDay.day == date(2025, 4, 11))
        .values(refunds=0)
    )
    found = {
        (d.table, d.store_id, d.day, d.key, d.column, d.stored, d.expected)
        for d in (await refresh.check(session)).differences
    }
    assert found == {
        ("analytics_category_days", a, monday, str(shop.drinks.id), "orders", 2, 1),
        ("analytics_category_members", a, wednesday, f"{shop.food.id}/8", "orders", 0, 1),
        ("analytics_product_members", a, monday, f"{shop.cola.id}/7", "orders", 5, 1),
        ("analytics_product_days", a, date(2025, 4, 11), str(shop.tea.id), "refunds", 0, 1),
    }
    await refresh.rebuild(session)
    assert (await refresh.check(session)).differences == []


async def test_a_database_summarised_before_the_new_tables_is_told_to_rebuild(
    session: AsyncSession,
) -> None:
    await build(session)
    assert await scoped_days.built(session)
    # As after migration ana_0007 on a database that had summaries: the new tables empty.
    for model in scoped_days.MODELS:
        await session.execute(delete(model))
    await session.execute(update(ProductDay).values(refunds=0))
    await session.execute(delete(RefreshState).where(RefreshState.name == scoped_days.STATE))
    result = await refresh.check(session)
    assert result.scoped_unbuilt
    assert result.differences == []  # said once, not a line per missing row
    await refresh.rebuild(session)
    result = await refresh.check(session)
    assert not result.scoped_unbuilt
    assert result.differences == []


async def test_the_refresh_job_builds_them_itself_after_the_upgrade(
    session: AsyncSession,
) -> None:
    """The operator who upgraded need not run the rebuild: the next refresh (every minute)
    fills the new tables from the orders, then refreshes as usual."""
    await build(session)
    expected = {m: len((await session.scalars(select(m))).all()) for m in scoped_days.MODELS}
    assert all(expected.values())
    for model in scoped_days.MODELS:
        await session.execute(delete(model))
    await session.execute(update(ProductDay).values(refunds=0))
    await session.execute(delete(RefreshState).where(RefreshState.name == scoped_days.STATE))
    assert (await refresh.check(session)).scoped_unbuilt
    assert await refresh.refresh(session) > 0  # every store day, once
    assert {m: len((await session.scalars(select(m))).all()) for m in scoped_days.MODELS} == (
        expected
    )
    result = await refresh.check(session)
    assert not result.scoped_unbuilt
    assert result.differences == []
    assert await refresh.refresh(session) == 0  # and then only what changed


async def test_the_live_tail_of_a_category_and_a_product(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Orders after the last refresh are in the figures at once, members distinct with the
    stored days, and the same after the refresh takes them in."""
    shop = await build(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    asks: list[dict[str, Any]] = [
        {**WEEK, "category_id": shop.drinks.id},
        {**WEEK, "product_id": shop.cola.id},
        {"start": "2025-04-07", "end": "2025-04-13", "category_id": shop.soda.id},
        {**WEEK, "product_id": shop.tea.id, "store_id": shop.b.id},
    ]
    # Saturday in the second store: member 7 (paid on Monday and Wednesday) and member 8
    # (tea only, so far) buy cola; member 7's Wednesday order there is closed.
    changed = [
        await sale(session, shop.b, [(shop.cola, 2)], paid_at=utc(2025, 4, 12, 2), member_id=7),
        await sale(
            session, shop.b, [(shop.cola, 1), (shop.tea, 1)], paid_at=utc(2025, 4, 12, 3),
            member_id=8,
        ),
    ]  # fmt: skip
    wednesday = await session.scalar(
        select(Order.id)
        .where(Order.store_id == shop.b.id, Order.member_id == 7)
        .where(Order.paid_at == utc(2025, 4, 9, 2))
    )
    await session.execute(update(Order).where(Order.id == wednesday).values(status="closed"))
    closed = await session.get(Order, wednesday)
    assert closed is not None
    changed.append(closed)
    session.add_all([feed_event(o) for o in changed])
    await session.flush()

    live = [await _get(client, h, **params) for params in asks]
    # Drinks: Wednesday's order in the second store is gone, two Saturday orders came; members
    # 7 and 8 still (7 paid on Monday and Saturday).
    assert live[0]["periods"][0]["current"] == figures(5, 3300, 2, 1000, 10, 660, "2.00", 2, None)
    # Cola: orders 1, 4 and the two of Saturday; member 8 is new to it.
    assert live[1]["periods"][0]["current"] == figures(4, 2100, 2, 700, 6, 525, "1.50", 2, None)
    days = {p["period"]: p["current"] for p in live[2]["periods"]}
    assert days["2025-04-09"]["orders"] == 0
    assert (days["2025-04-12"]["orders"], days["2025-04-12"]["paying_members"]) == (2, 2)
    assert live[3]["periods"][0]["current"] == figures(1, 300, 0, 0, 1, 300, "1.00", 1, None)

    assert await refresh.refresh(session) >= 2
    assert [await _get(client, h, **params) for params in asks] == live
    assert (await refresh.check(session)).differences == []
    await refresh.rebuild(session)
    assert [await _get(client, h, **params) for params in asks] == live


async def test_a_products_and_a_categorys_live_rows_summed_in_sql_equal_compute(
    session: AsyncSession,
) -> None:
    """`scoped_live.compute` (a product's or a category's live tail) gives the rows
    `summaries.compute` gives for it: orders once however many matching lines, a line taken
    off the bill, refunds once however many matching lines, members, the subtree, cancelled
    and closed orders left out, a refund on a day with no sale, a day with nothing."""
    shop = await build(session)
    # Member 9 pays on Friday for a cola and two teas, one tea taken off the bill first.
    taken = await sale(
        session, shop.b, [(shop.cola, 1), (shop.tea, 2)], paid_at=utc(2025, 4, 11, 4),
        member_id=9,
    )  # fmt: skip
    await session.execute(
        update(OrderLine)
        .where(OrderLine.order_id == taken.id, OrderLine.product_id == shop.tea.id)
        .values(cancelled_qty=1, cancelled_fen=300)
    )
    await session.execute(
        update(Order)
        .where(Order.id == taken.id)
        .values(item_count=2, total_fen=Order.total_fen - 300)
    )
    nothing = (shop.b.id, date(2025, 4, 13))
    keys = await summaries.stored_days(session) | {(shop.b.id, date(2025, 4, 11)), nothing}
    zones = await summaries.store_zones(session)
    want = await summaries.compute(session, keys)
    for product in (shop.cola, shop.tea, shop.chips):
        got = await scoped_live.compute(
            session, keys, zones, scoped_live.Target(product_id=product.id)
        )
        assert got.keys == keys
        assert got.products == {k: v for k, v in want.products.items() if k[2] == product.id}
        assert got.product_members == {
            k: v for k, v in want.product_members.items() if k[2] == product.id
        }
        assert (got.sales, got.categories, got.category_members) == ({}, {}, {})
    for category in (shop.food, shop.drinks, shop.soda, shop.snacks):
        subtree = {c.id for c in (shop.food, shop.drinks, shop.soda, shop.snacks)
                   if c.id == category.id or f"/{category.id}/" in c.path}  # fmt: skip
        target = scoped_live.Target(category_id=category.id, category_ids=tuple(sorted(subtree)))
        got = await scoped_live.compute(session, keys, zones, target)
        assert got.categories == {k: v for k, v in want.categories.items() if k[2] == category.id}
        assert got.category_members == {
            k: v for k, v in want.category_members.items() if k[2] == category.id
        }
    # The cases are there: a refund of two drinks lines counted once, a line taken off.
    drinks = {k[1]: v for k, v in want.categories.items() if k[2] == shop.drinks.id}
    assert drinks[date(2025, 4, 11)]["refunds"] == 2
    assert want.products[(shop.b.id, date(2025, 4, 11), shop.tea.id)]["quantity"] == 1
