"""Members versus guests tie out exactly: known orders in Asia/Shanghai on both sides of
midnight, a refund (sales stay gross), a cancelled order, members registered a second either
side of midnight, a merged-away duplicate and a store the reader may not see."""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh
from selfmart.kit.time import utcnow
from selfmart.models import Member, Store
from tests.analytics.builders import refund, sale
from tests.builders import auth_headers, make_store, make_user
from tests.members.helpers import make_member
from tests.orders.builders import make_order, make_product

URL = "/api/v1/analytics/members"


def shanghai(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A wall-clock time of 2025 in Asia/Shanghai, as UTC."""
    local = datetime(2025, month, day, hour, minute, second, tzinfo=ZoneInfo("Asia/Shanghai"))
    return local.astimezone(UTC)


async def member(
    session: AsyncSession, home: Store, registered: datetime, status: str = "active"
) -> Member:
    m = await make_member(session, status=status)
    m.home_store_id = home.id
    m.registered_at = registered
    await session.flush()
    return m


async def build(session: AsyncSession) -> tuple[Store, Store, Store]:
    square = await make_store(session, name="人民广场店", city="上海", timezone="Asia/Shanghai")
    xuhui = await make_store(session, name="徐汇店", city="上海", timezone="Asia/Shanghai")
    other = await make_store(session, name="别的店", city="杭州", timezone="Asia/Shanghai")
    stores = [square, xuhui, other]
    cola = await make_product(session, name="可乐", price_fen=350, stores=stores)
    chips = await make_product(session, name="薯片", price_fen=800, stores=stores)
    m1 = await member(session, square, shanghai(2, 10, 9))
    # A second before and at midnight: 31 March and 1 April.
    m2 = await member(session, square, shanghai(3, 31, 23, 59, 59))
    m3 = await member(session, xuhui, shanghai(4, 1, 0, 0, 0))
    # Not new members the reader sees: another store's, and a duplicate merged away.
    m4 = await member(session, other, shanghai(4, 1, 10))
    await member(session, square, shanghai(4, 1, 11), status="merged")

    await sale(session, square, [(cola, 1)], paid_at=shanghai(3, 15, 9), member_id=m1.id)
    await sale(session, square, [(chips, 1)], paid_at=shanghai(3, 31, 23, 59, 59), member_id=m2.id)
    first = await sale(session, square, [(cola, 2)], paid_at=shanghai(4, 1, 10), member_id=m1.id)
    await refund(session, first, cola, 1, at=shanghai(4, 1, 12))
    await sale(session, xuhui, [(cola, 1)], paid_at=shanghai(4, 1, 0, 0, 1), member_id=m2.id)
    await sale(session, square, [(chips, 1)], paid_at=shanghai(4, 1, 15))
    await sale(
        session, xuhui, [(chips, 4)], paid_at=None, status="cancelled", created_at=shanghai(4, 1, 9)
    )
    # Created before midnight, paid 30 s after it: a sale of 2 April.
    await sale(
        session,
        square,
        [(cola, 1)],
        created_at=shanghai(4, 1, 23, 59),
        paid_at=shanghai(4, 2, 0, 0, 30),
        member_id=m3.id,
    )
    await sale(session, other, [(chips, 1)], paid_at=shanghai(4, 1, 9), member_id=m4.id)
    await session.flush()
    await refresh.rebuild(session)
    return square, xuhui, other


def figures(
    orders: int = 0,
    sales: int = 0,
    member_orders: int = 0,
    member_sales: int = 0,
    new: int = 0,
    paying: int = 0,
    repeat: int = 0,
    rate: str | None = None,
) -> dict[str, Any]:
    return {
        "orders": orders,
        "sales_fen": sales,
        "member_orders": member_orders,
        "member_sales_fen": member_sales,
        "guest_orders": orders - member_orders,
        "guest_sales_fen": sales - member_sales,
        "new_members": new,
        "paying_members": paying,
        "repeat_members": repeat,
        "repurchase_rate": rate,
    }


async def headers(session: AsyncSession, *stores: Store) -> dict[str, str]:
    user = await make_user(session, role="admin", stores=list(stores))
    return await auth_headers(session, user)


async def test_by_day_across_midnight(client: httpx.AsyncClient, session: AsyncSession) -> None:
    square, xuhui, _ = await build(session)
    h = await headers(session, square, xuhui)
    r = await client.get(URL, params={"start": "2025-03-31", "end": "2025-04-02"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["store_ids"] == [square.id, xuhui.id]
    days = {p["period"]: p for p in body["periods"]}
    assert list(days) == ["2025-03-31", "2025-04-01", "2025-04-02"]
    assert days["2025-03-31"]["current"] == figures(1, 800, 1, 800, 1, 1, 0, "0.0000")
    assert days["2025-03-31"]["previous"] == figures()
    # m1 (paid 15 March) and m2 (paid 31 March) both come back; the refund leaves sales
    # gross, the cancelled order is no sale; m3 registered at midnight is new here.
    assert days["2025-04-01"]["current"] == figures(3, 1850, 2, 1050, 1, 2, 2, "1.0000")
    assert days["2025-04-01"]["previous"] == days["2025-03-31"]["current"]
    assert days["2025-04-02"]["current"] == figures(1, 350, 1, 350, 0, 1, 0, "0.0000")
    total = body["total"]
    assert (total["start"], total["end"]) == ("2025-03-31", "2025-04-02")
    # Of m1, m2 and m3 only m1 had paid before 31 March.
    assert total["current"] == figures(5, 3000, 4, 2200, 2, 3, 1, "0.3333")
    assert total["previous"] == figures()


async def test_one_store_by_month(client: httpx.AsyncClient, session: AsyncSession) -> None:
    square, xuhui, _ = await build(session)
    h = await headers(session, square, xuhui)
    r = await client.get(
        URL,
        params={
            "start": "2025-04-01",
            "end": "2025-04-30",
            "granularity": "month",
            "store_id": square.id,
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    (april,) = r.json()["periods"]
    assert april["period"] == "2025-04"
    # m1 and m3 paid here in April; only m1 had paid here before. m3's home is Xuhui.
    assert april["current"] == figures(3, 1850, 2, 1050, 0, 2, 1, "0.5000")
    # March here: m1 on the 15th, m2 (registered here on the 31st) on the 31st.
    assert april["previous"] == figures(2, 1150, 2, 1150, 1, 2, 0, "0.0000")


async def test_export_has_the_same_figures(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    square, xuhui, _ = await build(session)
    h = await headers(session, square, xuhui)
    r = await client.get(
        f"{URL}/export", params={"start": "2025-03-31", "end": "2025-04-02"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert "members-2025-03-31-2025-04-02-day.xlsx" in r.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["本期", "上期"]
    rows = [list(row) for row in wb["本期"].iter_rows(values_only=True)]
    assert rows[0][:5] == ["周期", "开始", "结束", "订单数", "销售额(元)"]
    assert rows[2][0] == "2025-04-01"
    assert rows[2][3:] == [3, 18.5, 2, 10.5, 1, 8, 1, 2, 2, 1]
    assert rows[-1][0] == "合计"
    assert rows[-1][3:] == [5, 30, 4, 22, 1, 8, 2, 3, 1, 0.3333]


async def test_bad_input_and_other_stores(client: httpx.AsyncClient, session: AsyncSession) -> None:
    square, xuhui, other = await build(session)
    h = await headers(session, square, xuhui)
    r = await client.get(
        URL, params={"start": "2025-04-01", "end": "2025-04-01", "store_id": other.id}, headers=h
    )
    assert r.status_code == 404, r.text
    assert r.json()["details"][0]["field"] == "store_id"
    r = await client.get(URL, params={"start": "2025-04-02", "end": "2025-04-01"}, headers=h)
    assert r.status_code == 422, r.text
    r = await client.get(
        URL, params={"start": "2020-01-01", "end": "2025-04-01", "granularity": "day"}, headers=h
    )
    assert r.status_code == 422, r.text
    # A store with nothing: zeros, no gaps.
    empty = await make_store(session, name="空店", city="苏州", timezone="Asia/Shanghai")
    h = await headers(session, empty)
    r = await client.get(URL, params={"start": "2025-04-01", "end": "2025-04-02"}, headers=h)
    assert r.status_code == 200, r.text
    assert [p["current"] for p in r.json()["periods"]] == [figures(), figures()]


async def test_the_live_tail_counts_before_the_refresh(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session, timezone="Asia/Shanghai")
    cola = await make_product(session, stores=[store], price_fen=350)
    h = await auth_headers(session, await make_user(session, role="super_admin"))
    today = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).date()
    regular = await member(session, store, utcnow() - timedelta(days=30))
    # Paid a week ago, summarised by the rebuild.
    week_ago = datetime.combine(today - timedelta(days=7), time(12), ZoneInfo("Asia/Shanghai"))
    await sale(session, store, [(cola, 1)], paid_at=week_ago.astimezone(UTC), member_id=regular.id)
    await refresh.rebuild(session)
    # Today, through the API and not refreshed yet: the member comes back, and a guest buys.
    for member_id in (regular.id, None):
        order = await make_order(session, store, [(cola, 2)])
        order.member_id = member_id
        await session.flush()
        r = await client.post(f"/api/v1/orders/{order.id}/payments", json={}, headers=h)
        assert r.status_code == 201, r.text
    day = today.isoformat()
    r = await client.get(URL, params={"start": day, "end": day, "store_id": store.id}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["periods"][0]["current"] == figures(2, 1400, 1, 700, 0, 1, 1, "1.0000")
