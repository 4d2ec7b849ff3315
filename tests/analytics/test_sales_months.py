"""A store's month is kept as one row (the sum of its local days) so that a chain's year is
read as one row per store and month: the rows equal the raw orders' days in each store's own
zone (month ends in Shanghai and in Berlin), the refresh keeps them, a dashboard over whole
months reads them and still shows the live tail, and the check names a wrong one."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import months, refresh
from selfmart.kit.time import utcnow
from selfmart.models import SalesMonth
from tests.analytics.test_statistics import build_chain
from tests.builders import auth_headers, make_user
from tests.orders.builders import make_order


def _month(
    orders: int, sales: int, items: int, member: tuple[int, int] = (0, 0), **rest: int
) -> Any:
    return {
        "orders": orders,
        "sales_fen": sales,
        "items": items,
        "member_orders": member[0],
        "member_sales_fen": member[1],
        "refunds": rest.get("refunds", 0),
        "refunds_fen": rest.get("refunds_fen", 0),
    }


async def test_month_rows_are_the_stores_local_days(session: AsyncSession) -> None:
    chain = await build_chain(session)
    sh, be, other = chain.shanghai.id, chain.berlin.id, chain.other.id
    assert await months.stored(session) == {
        # 30 and 31 March in Shanghai (23:30 and 23:59:59 there, already UTC's 30/31 March).
        (sh, date(2025, 3, 1)): _month(2, 1050, 3, (2, 1050)),
        # Paid 30 s after midnight on 1 April (created on 31 March), a cash sale, and a can
        # refunded on 2 April; a closed order with a late payment is no sale.
        (sh, date(2025, 4, 1)): _month(2, 2200, 5, (1, 1150), refunds=1, refunds_fen=350),
        (sh, date(2024, 4, 1)): _month(1, 1400, 4),
        # 23:30 on 31 March in Berlin is 1 April in Shanghai: still Berlin's March.
        (be, date(2025, 3, 1)): _month(1, 350, 1, (1, 350)),
        # 23:59 on 30 April in Berlin (1 May in UTC+8): Berlin's April.
        (be, date(2025, 4, 1)): _month(1, 1600, 2),
        (other, date(2025, 4, 1)): _month(1, 3150, 9),
    }


async def test_refresh_keeps_the_month_and_check_names_a_wrong_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()
    first = today.replace(day=1)
    ask = {"start": first.isoformat(), "end": months.month_end(first).isoformat()}

    async def month_sales() -> int:
        r = await client.get(
            "/api/v1/analytics/sales", params={**ask, "granularity": "month"}, headers=h
        )
        assert r.status_code == 200, r.text
        return int(r.json()["total"]["current"]["sales_fen"])

    assert await month_sales() == 0
    order = await make_order(session, chain.shanghai, [(chain.cola, 2)])
    r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    assert r.status_code == 201, r.text
    # Not refreshed yet: the month has a live day, so it is read by its days and the tail.
    assert await month_sales() == 700
    await refresh.refresh(session)
    assert (await months.stored(session))[(chain.shanghai.id, first)]["sales_fen"] == 700
    assert await month_sales() == 700
    assert (await refresh.check(session)).differences == []

    await session.execute(
        update(SalesMonth)
        .where(SalesMonth.store_id == chain.berlin.id, SalesMonth.month == date(2025, 4, 1))
        .values(sales_fen=1, refunds=2)
    )
    found = [
        (d.table, d.store_id, d.day, d.column, d.stored, d.expected)
        for d in (await refresh.check(session)).differences
    ]
    assert found == [
        ("analytics_sales_months", chain.berlin.id, date(2025, 4, 1), "sales_fen", 1, 1600),
        ("analytics_sales_months", chain.berlin.id, date(2025, 4, 1), "refunds", 2, 0),
    ]
    await refresh.rebuild(session)
    assert (await refresh.check(session)).differences == []


async def _chain_sales(client: httpx.AsyncClient, session: AsyncSession) -> Any:
    """The chain built, and `GET /analytics/sales` as a super admin (params -> the JSON)."""
    await build_chain(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))

    async def sales(**params: Any) -> Any:
        r = await client.get("/api/v1/analytics/sales", params=params, headers=h)
        assert r.status_code == 200, r.text
        return r.json()

    return sales


async def test_whole_months_read_from_month_rows_equal_their_days(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    sales = await _chain_sales(client, session)

    by_month = await sales(start="2025-03-01", end="2025-04-30", granularity="month")
    by_day = await sales(start="2025-03-01", end="2025-04-30", granularity="day")
    assert by_month["total"]["current"] == by_day["total"]["current"]
    april = by_month["periods"][1]
    # The three stores' Aprils (Berlin's 30 April 23:59 included) and April 2024 beside it.
    assert (april["current"]["orders"], april["current"]["sales_fen"]) == (4, 6950)
    assert (april["last_year"]["orders"], april["last_year"]["sales_fen"]) == (1, 1400)
    assert (april["previous"]["orders"], april["previous"]["sales_fen"]) == (3, 1400)


async def test_a_whole_month_read_by_its_days_in_one_window_and_whole_in_another(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """May by day: the window before it is 31 March to 30 April, which holds April whole, while
    30 April is also read as a day (the day before 1 May). April is then read by its days in
    both (it was read in neither: the window before counted 31 March alone)."""
    sales = await _chain_sales(client, session)

    may = await sales(start="2025-05-01", end="2025-05-31", granularity="day")
    before = await sales(start="2025-03-31", end="2025-04-30", granularity="day")
    assert may["total"]["previous"] == before["total"]["current"]
    # 31 March: Shanghai's 23:59:59 sale and Berlin's 23:30; and the three stores' Aprils.
    assert before["total"]["current"]["orders"] == 2 + 4
