"""The summaries follow the orders: the refresh job recomputes the days that changed (twice
gives the same rows), the statistics include the tail it has not taken in yet, and the check
names any summary figure that differs from the raw orders."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh, summaries
from selfmart.kit.time import clock_at, utcnow
from selfmart.models import Order, OrderLine, ProductDay, SalesDay
from tests.analytics.builders import sale
from tests.analytics.test_statistics import build_chain, utc
from tests.builders import auth_headers, make_store, make_user
from tests.orders.builders import make_order, make_product


async def _rows(session: AsyncSession, store_id: int) -> list[tuple[object, ...]]:
    rows = await session.execute(
        select(
            SalesDay.store_id,
            SalesDay.day,
            SalesDay.orders,
            SalesDay.sales_fen,
            SalesDay.refunds,
            SalesDay.refunds_fen,
            SalesDay.items,
        )
        .where(SalesDay.store_id == store_id)
        .order_by(SalesDay.day)
    )
    return [tuple(r) for r in rows.all()]


async def test_paid_and_refunded_orders_reach_the_summaries_and_today(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session, timezone="Asia/Shanghai")
    cola = await make_product(session, stores=[store], price_fen=350)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    await refresh.rebuild(session)
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()

    order = await make_order(session, store, [(cola, 2)])
    unpaid = await make_order(session, store, [(cola, 7)])
    r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/api/v1/orders/{unpaid.id}/cancel", json={"reason": "顾客放弃"}, headers=h
    )
    assert r.status_code == 200, r.text

    # Not refreshed yet: the summaries hold nothing, the statistics already show the sale.
    assert await _rows(session, store.id) == []
    r = await client.get("/api/v1/analytics/today", params={"store_id": store.id}, headers=h)
    assert r.status_code == 200, r.text
    live = r.json()["figures"]
    assert (live["orders"], live["sales_fen"], live["items"], live["refunds_fen"]) == (1, 700, 2, 0)

    assert await refresh.refresh(session) == 1
    assert await _rows(session, store.id) == [(store.id, today, 1, 700, 0, 0, 2)]
    # Again: the same rows, nothing counted twice.
    await refresh.refresh(session)
    assert await _rows(session, store.id) == [(store.id, today, 1, 700, 0, 0, 2)]

    line = await session.scalar(select(OrderLine).where(OrderLine.order_id == order.id))
    assert line is not None
    r = await client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"lines": [{"line_id": line.id, "quantity": 1}], "reason": "破损"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await client.get(
        "/api/v1/analytics/sales",
        params={"start": today.isoformat(), "end": today.isoformat(), "store_id": store.id},
        headers=h,
    )
    now = r.json()["periods"][0]["current"]
    assert (now["orders"], now["sales_fen"], now["refunds"], now["refunds_fen"]) == (1, 700, 1, 350)
    assert now["net_sales_fen"] == 350

    # Ten minutes on, the mark passes these changes: nothing is left pending.
    with clock_at(utcnow() + timedelta(minutes=11)):
        await refresh.refresh(session)
    assert await _rows(session, store.id) == [(store.id, today, 1, 700, 1, 350, 2)]
    result = await refresh.check(session)
    # Every summarised day of the database ties out; nothing is left for the next refresh.
    assert (result.differences, result.pending) == ([], 0)
    assert result.checked >= 1


async def test_today_changes_as_an_order_is_paid(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Today's figures, for the store and the chain: nothing while the order awaits payment,
    the order once it is paid (its total as the sales, the same as the day's statistics),
    and the same again once the refresh job has taken it into the summaries."""
    store = await make_store(session, timezone="Asia/Shanghai")
    elsewhere = await make_store(session, timezone="Europe/Berlin")
    cola = await make_product(session, stores=[store], price_fen=350)
    chips = await make_product(session, stores=[store], price_fen=800)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    await refresh.rebuild(session)
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date().isoformat()

    async def now(**params: int) -> dict[str, int]:
        r = await client.get("/api/v1/analytics/today", params=params, headers=h)
        assert r.status_code == 200, r.text
        figures: dict[str, int] = r.json()["figures"]
        return figures

    order = await make_order(session, store, [(cola, 2), (chips, 1)])
    assert order.total_fen == 1500
    for params in ({"store_id": store.id}, {}, {"store_id": elsewhere.id}):
        figures = await now(**params)
        assert (figures["orders"], figures["sales_fen"], figures["items"]) == (0, 0, 0), params

    r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    assert r.status_code == 201, r.text
    for params in ({"store_id": store.id}, {}):
        figures = await now(**params)
        assert (figures["orders"], figures["sales_fen"], figures["items"]) == (1, 1500, 3), params
        assert figures["net_sales_fen"] == 1500
    assert (await now(store_id=elsewhere.id))["orders"] == 0
    r = await client.get(
        "/api/v1/analytics/sales", params={"start": today, "end": today}, headers=h
    )
    assert r.json()["total"]["current"]["sales_fen"] == (await now())["sales_fen"]

    assert await refresh.refresh(session) == 1
    figures = await now(store_id=store.id)
    assert (figures["orders"], figures["sales_fen"], figures["items"]) == (1, 1500, 3)


async def test_check_names_every_difference(session: AsyncSession) -> None:
    store = await make_store(session, timezone="Europe/Berlin")
    cola = await make_product(session, stores=[store], price_fen=350)
    await sale(session, store, [(cola, 3)], paid_at=utc(2025, 10, 26, 22, 30))  # 23:30 CET
    await sale(session, store, [(cola, 1)], paid_at=utc(2025, 10, 25, 21, 59))  # 23:59 CEST
    assert await refresh.rebuild(session) >= 2
    result = await refresh.check(session)
    assert result.differences == []

    await session.execute(
        update(SalesDay)
        .where(SalesDay.store_id == store.id, SalesDay.day == utc(2025, 10, 26).date())
        .values(sales_fen=SalesDay.sales_fen + 1)
    )
    await session.execute(
        delete(ProductDay).where(
            ProductDay.store_id == store.id, ProductDay.day == utc(2025, 10, 25).date()
        )
    )
    differences = (await refresh.check(session)).differences
    assert {d.store_id for d in differences} == {store.id}
    found = {
        (d.table, d.day.isoformat(), d.key, d.column, d.stored, d.expected) for d in differences
    }
    assert ("analytics_sales_days", "2025-10-26", "", "sales_fen", 1051, 1050) in found
    assert ("analytics_product_days", "2025-10-25", str(cola.id), "sales_fen", 0, 350) in found
    assert ("analytics_product_days", "2025-10-25", str(cola.id), "quantity", 0, 1) in found
    assert all(d[1] in {"2025-10-25", "2025-10-26"} for d in found)

    await refresh.rebuild(session)
    assert (await refresh.check(session)).differences == []


async def test_check_names_an_order_whose_item_count_is_not_its_lines(
    session: AsyncSession,
) -> None:
    # The live tail sums a day's items from the orders' item_count, the stored days from the
    # lines: the check holds the one to the other.
    store = await make_store(session, timezone="Europe/Berlin")
    cola = await make_product(session, stores=[store], price_fen=350)
    order = await sale(session, store, [(cola, 3)], paid_at=utc(2025, 10, 26, 22, 30))
    await refresh.rebuild(session)
    assert (await refresh.check(session)).differences == []

    await session.execute(
        update(Order).where(Order.id == order.id).values(item_count=Order.item_count + 2)
    )
    differences = (await refresh.check(session)).differences
    assert [
        (d.table, d.store_id, d.day.isoformat(), d.key, d.column, d.stored, d.expected)
        for d in differences
    ] == [("orders", store.id, "2025-10-26", f"order {order.id}", "item_count", 5, 3)]


async def test_a_store_moved_to_another_time_zone_is_restated_by_the_refresh(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session, timezone="Europe/Berlin")
    cola = await make_product(session, stores=[store], price_fen=350)
    # 23:30 on 26 October in Berlin is 06:30 on 27 October in Shanghai.
    await sale(session, store, [(cola, 3)], paid_at=utc(2025, 10, 26, 22, 30))
    await refresh.rebuild(session)
    assert [r[1] for r in await _rows(session, store.id)] == [date(2025, 10, 26)]
    h = await auth_headers(session, await make_user(session, role="super_admin"))

    r = await client.patch(
        f"/api/v1/stores/{store.id}", json={"timezone": "Asia/Shanghai"}, headers=h
    )
    assert r.status_code == 200, r.text
    # Until the refresh has run, the check leaves the store to it (no difference named).
    result = await refresh.check(session)
    assert result.differences == []
    assert result.pending >= 2  # its day in the old zone and in the new one
    assert await refresh.restating_stores(session) == [store.id]

    await refresh.refresh(session)
    assert [(r[1], r[2], r[3]) for r in await _rows(session, store.id)] == [
        (date(2025, 10, 27), 1, 1050)
    ]
    assert await refresh.restating_stores(session) == []
    result = await refresh.check(session)
    assert (result.differences, result.pending) == ([], 0)
    r = await client.get(
        "/api/v1/analytics/sales",
        params={"start": "2025-10-26", "end": "2025-10-27", "granularity": "day",
                "store_id": store.id},
        headers=h,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    orders = {p["period"]: p["current"]["orders"] for p in r.json()["periods"]}
    assert orders == {"2025-10-26": 0, "2025-10-27": 1}


async def test_rebuild_writes_what_compute_says_for_every_day(session: AsyncSession) -> None:
    """The rebuild (set-based INSERT … SELECT on PostgreSQL, store-day batches on SQLite) writes
    exactly the rows `summaries.compute` gives: sales, refunds with their lines, cancelled and
    closed orders, members, days crossing midnight in two zones, categories."""
    chain = await build_chain(session)
    await sale(session, chain.berlin, [(chain.tea, 2)], paid_at=utc(2025, 6, 1, 12, 0), method="")
    days = await refresh.rebuild(session)
    keys = await summaries.stored_days(session)
    assert days == len(keys) >= 7
    have = await summaries.stored(session, keys)
    want = await summaries.compute(session, keys)
    assert refresh.compare(have, want) == []
    assert (have.sales, have.products, have.members, have.hours) == (
        want.sales,
        want.products,
        want.members,
        want.hours,
    )
    # The refund's line is on its product's day (2 April in Shanghai), and the empty payment
    # method is counted as unknown.
    assert have.products[(chain.shanghai.id, date(2025, 4, 2), chain.cola.id)]["refund_qty"] == 1
    assert any(k[3] == "unknown" for k in have.hours)
    assert (await refresh.check(session)).differences == []
