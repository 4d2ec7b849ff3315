"""The live tail (store days changed since the last refresh) corrects the stored rows it
replaces, in whole months read as one row and in stored distinct-member counts alike: every
figure of a dashboard read with the tail equals the same dashboard read after the refresh and a
rebuild have taken the changes in."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh, summaries
from selfmart.kit.time import clock_at, utcnow
from selfmart.models import Order
from tests.analytics.builders import feed_event, sale
from tests.analytics.test_statistics import build_chain, utc
from tests.builders import auth_headers, make_user


async def test_a_dashboard_with_a_live_tail_equals_it_after_the_refresh(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)  # rebuilt: everything so far is stored
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    asks: list[dict[str, Any]] = [
        {"start": "2025-01-01", "end": "2025-12-31", "granularity": "month"},
        {"start": "2025-03-01", "end": "2025-04-30", "granularity": "day"},
        {"start": "2025-03-24", "end": "2025-04-13", "granularity": "week"},
        {"start": "2025-03-01", "end": "2025-04-30", "granularity": "month",
         "store_id": chain.shanghai.id},
        {"start": "2025-04-01", "end": "2025-04-30", "granularity": "day",
         "store_id": chain.berlin.id},
        {"start": "2025-03-01", "end": "2025-04-30", "granularity": "month",
         "city": "上海"},
    ]  # fmt: skip

    async def dashboards() -> list[Any]:
        out = []
        for params in asks:
            # Sales, and members versus guests (paying, repeat members) from the same tail.
            for path in ("sales", "members"):
                r = await client.get(f"/api/v1/analytics/{path}", params=params, headers=h)
                assert r.status_code == 200, r.text
                out.append(r.json())
        return out

    before = await dashboards()
    changed: list[Order] = []
    # Member 2 (who paid on 30 March) pays again on 1 April in Shanghai: new to April and its
    # week, not to the year.
    changed.append(
        await sale(
            session, chain.shanghai, [(chain.cola, 3)], paid_at=utc(2025, 4, 1, 6), member_id=2
        )
    )
    # Member 1's stored sale of 31 March in Shanghai is closed (a late payment given back):
    # the member still paid in Berlin that evening and in Shanghai on 1 April.
    first = await session.scalar(
        select(Order).where(
            Order.store_id == chain.shanghai.id,
            Order.member_id == 1,
            Order.paid_at == utc(2025, 3, 31, 15, 59, 59),
        )
    )
    assert first is not None
    await session.execute(update(Order).where(Order.id == first.id).values(status="closed"))
    changed.append(first)
    # Member 2's only stored day (30 March in Shanghai) is closed too: gone from March, but
    # still a paying member of the year through the new sale above.
    second = await session.scalar(
        select(Order).where(
            Order.store_id == chain.shanghai.id,
            Order.member_id == 2,
            Order.paid_at == utc(2025, 3, 30, 15, 30),
        )
    )
    assert second is not None
    await session.execute(update(Order).where(Order.id == second.id).values(status="closed"))
    changed.append(second)
    # A new member in Berlin on the last evening of April (1 May in Shanghai).
    changed.append(
        await sale(
            session, chain.berlin, [(chain.chips, 1)], paid_at=utc(2025, 4, 30, 21, 0), member_id=9
        )
    )
    session.add_all([feed_event(o) for o in changed])
    await session.flush()
    keys, _, _ = await refresh.pending_days(session)
    assert len(keys) == 4  # four live store days, three of them with stored rows

    live = await dashboards()
    assert live != before
    year = live[0]["total"]["current"]
    # Members 1, 2 and 9 paid in 2025 (member 2 only on the new sale now).
    assert year["paying_members"] == 3
    assert live[1]["total"]["current"]["paying_members"] == 3

    with clock_at(utcnow() + timedelta(minutes=11)):
        await refresh.refresh(session)
    keys, _, _ = await refresh.pending_days(session)
    assert keys == set()
    assert await dashboards() == live
    await refresh.rebuild(session)
    assert await dashboards() == live
    assert (await refresh.check(session)).differences == []


async def test_the_live_store_days_summed_in_sql_equal_compute(session: AsyncSession) -> None:
    """`compute_sales` (the sales statistics' live tail) gives the store-day and member-day
    rows `compute` gives: cancelled and closed orders left out, a refund on its own day,
    midnight in Shanghai and Berlin, and a day with nothing on it."""
    chain = await build_chain(session)
    await sale(
        session, chain.berlin, [(chain.tea, 2)], paid_at=utc(2025, 3, 31, 22, 30), member_id=4
    )
    keys = await summaries.stored_days(session) | {(chain.other.id, date(2025, 1, 1))}
    want = await summaries.compute(session, keys)
    got = await summaries.compute_sales(session, keys)
    assert (got.keys, got.sales, got.members) == (want.keys, want.sales, want.members)
    assert any(row["refunds"] for row in got.sales.values())
    assert len(got.members) >= 3
