"""Distinct paying members per whole period are stored (per store and for the chain) so that a
chain's year is one row, not a year of member days: the stored counts equal what the member
days say, the statistics give the same figures with and without them, the live tail is never
hidden behind a stale count, and the check names a count that is wrong."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import member_counts, refresh
from selfmart.kit.time import utcnow
from selfmart.models import MemberCount, Order, RefreshState
from tests.analytics.test_statistics import build_chain
from tests.builders import auth_headers, make_user
from tests.orders.builders import make_order


async def _sales(client: httpx.AsyncClient, h: dict[str, str], **params: Any) -> Any:
    r = await client.get("/api/v1/analytics/sales", params=params, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


async def test_counts_per_period_for_each_store_and_the_chain(session: AsyncSession) -> None:
    chain = await build_chain(session)
    sh, be, chain_key = chain.shanghai.id, chain.berlin.id, member_counts.CHAIN
    periods = {
        ("day", date(2025, 3, 31)),
        ("week", date(2025, 3, 24)),
        ("week", date(2025, 3, 31)),
        ("month", date(2025, 3, 1)),
        ("month", date(2025, 4, 1)),
        ("year", date(2025, 1, 1)),
        ("year", date(2024, 1, 1)),
    }
    counts = await member_counts.stored(session, periods)
    # Member 2 on Sunday 30 March in Shanghai; member 1 on 31 March in Shanghai and in Berlin
    # and on 1 April in Shanghai: one member however many days and stores.
    assert counts == {
        (sh, "day", date(2025, 3, 31)): 1,
        (be, "day", date(2025, 3, 31)): 1,
        (chain_key, "day", date(2025, 3, 31)): 1,
        (sh, "week", date(2025, 3, 24)): 1,
        (chain_key, "week", date(2025, 3, 24)): 1,
        (sh, "week", date(2025, 3, 31)): 1,
        (be, "week", date(2025, 3, 31)): 1,
        (chain_key, "week", date(2025, 3, 31)): 1,
        (sh, "month", date(2025, 3, 1)): 2,
        (be, "month", date(2025, 3, 1)): 1,
        (chain_key, "month", date(2025, 3, 1)): 2,
        (sh, "month", date(2025, 4, 1)): 1,
        (chain_key, "month", date(2025, 4, 1)): 1,
        (sh, "year", date(2025, 1, 1)): 2,
        (be, "year", date(2025, 1, 1)): 1,
        (chain_key, "year", date(2025, 1, 1)): 2,
    }
    assert counts == await member_counts.expected(session, periods)


async def test_statistics_equal_with_and_without_stored_counts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    shanghai = chain.shanghai.id
    asks: list[dict[str, Any]] = [
        {"start": "2025-01-01", "end": "2025-12-31", "granularity": "month"},
        {"start": "2025-03-01", "end": "2025-04-30", "granularity": "day"},
        {"start": "2025-03-24", "end": "2025-04-06", "granularity": "week"},
        {"start": "2025-03-01", "end": "2025-04-30", "granularity": "month", "store_id": shanghai},
        {"start": "2025-03-30", "end": "2025-04-02", "granularity": "day", "city": "上海"},
    ]  # fmt: skip
    stored = [await _sales(client, h, **a) for a in asks]
    year = stored[0]["total"]["current"]
    assert (year["orders"], year["paying_members"], year["member_sales_fen"]) == (7, 2, 2550)
    march = stored[3]["periods"][0]["current"]
    assert (march["paying_members"], march["member_sales_fen"]) == (2, 1050)

    # Without the counts (a database upgraded and not yet rebuilt), from the member days.
    await session.execute(delete(RefreshState).where(RefreshState.name == member_counts.STATE))
    await session.execute(delete(MemberCount))
    assert [await _sales(client, h, **a) for a in asks] == stored


async def test_a_live_member_is_counted_before_and_after_the_refresh(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()
    month = {"start": today.replace(day=1).isoformat(), "end": today.isoformat()}
    ask = {**month, "granularity": "month"}
    assert (await _sales(client, h, **ask))["total"]["current"]["paying_members"] == 0

    order = await make_order(session, chain.shanghai, [(chain.cola, 2)])
    await session.execute(update(Order).where(Order.id == order.id).values(member_id=3))
    r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
    assert r.status_code == 201, r.text
    # Not refreshed: the stored count of this month says 0; the live day is counted instead.
    body = await _sales(client, h, **ask)
    assert body["total"]["current"]["paying_members"] == 1
    assert body["periods"][-1]["current"]["paying_members"] == 1

    await refresh.refresh(session)
    counts = await member_counts.stored(session, {("month", today.replace(day=1))})
    assert counts == {
        (member_counts.CHAIN, "month", today.replace(day=1)): 1,
        (chain.shanghai.id, "month", today.replace(day=1)): 1,
    }
    assert (await _sales(client, h, **ask))["total"]["current"]["paying_members"] == 1
    assert (await refresh.check(session)).differences == []


async def test_check_names_a_wrong_count(session: AsyncSession) -> None:
    await build_chain(session)
    assert (await refresh.check(session)).differences == []
    await session.execute(
        update(MemberCount)
        .where(
            MemberCount.store_id == member_counts.CHAIN,
            MemberCount.kind == "year",
            MemberCount.start == date(2025, 1, 1),
        )
        .values(members=5)
    )
    found = [
        (d.table, d.store_id, d.day, d.key, d.column, d.stored, d.expected)
        for d in (await refresh.check(session)).differences
    ]
    assert found == [
        ("analytics_member_counts", 0, date(2025, 1, 1), "year", "members", 5, 2),
    ]
    await refresh.rebuild(session)
    assert (await refresh.check(session)).differences == []
