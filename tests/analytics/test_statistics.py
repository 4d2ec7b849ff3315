"""Sales statistics tie out to the fen: orders with known totals in Asia/Shanghai and in
Europe/Berlin (across its spring DST change), crossing midnight, a week end and month ends,
with refunds, a cancelled order and a closed one that are not sales."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import refresh
from selfmart.models import Category, Product, Store
from tests.analytics.builders import refund, sale
from tests.builders import auth_headers, make_store, make_user
from tests.catalog.helpers import make_category
from tests.orders.builders import make_product


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class Chain:
    shanghai: Store
    berlin: Store
    other: Store
    cola: Product
    chips: Product
    tea: Product
    drinks: Category
    snacks: Category


async def build_chain(session: AsyncSession) -> Chain:
    shanghai = await make_store(session, name="人民广场店", city="上海", timezone="Asia/Shanghai")
    berlin = await make_store(session, name="Mitte", city="Berlin", timezone="Europe/Berlin")
    other = await make_store(session, name="别的店", city="杭州", timezone="Asia/Shanghai")
    drinks = await make_category(session, "饮料")
    snacks = await make_category(session, "零食")
    crisps = await make_category(session, "薯片", parent=snacks)
    both = [shanghai, berlin]
    cola = await make_product(session, name="可乐", price_fen=350, stores=both)
    chips = await make_product(session, name="薯片", price_fen=800, stores=both)
    tea = await make_product(session, name="绿茶", price_fen=300, stores=[shanghai])
    cola.category_id, chips.category_id, tea.category_id = drinks.id, crisps.id, drinks.id
    await session.flush()

    # Sunday 30 March 2025, 23:30 in Shanghai: the last minutes of ISO week 13.
    await sale(session, shanghai, [(cola, 1)], paid_at=utc(2025, 3, 30, 15, 30), member_id=2)
    # Monday 31 March 23:59:59 in Shanghai.
    await sale(session, shanghai, [(cola, 2)], paid_at=utc(2025, 3, 31, 15, 59, 59), member_id=1)
    # Created at 23:58 on 31 March, paid 30 s after midnight: a sale of 1 April (Tuesday).
    await sale(
        session,
        shanghai,
        [(chips, 1), (cola, 1)],
        created_at=utc(2025, 3, 31, 15, 58),
        paid_at=utc(2025, 3, 31, 16, 0, 30),
        member_id=1,
        method="alipay",
    )
    cash = await sale(
        session, shanghai, [(cola, 3)], paid_at=utc(2025, 4, 1, 3, 0), method="manual"
    )
    # One can back on 2 April, 10:00 in Shanghai.
    await refund(session, cash, cola, 1, at=utc(2025, 4, 2, 2, 0))
    # Neither is a sale: cancelled before paying; closed (a late payment given back).
    await sale(
        session,
        shanghai,
        [(cola, 5)],
        paid_at=None,
        status="cancelled",
        created_at=utc(2025, 3, 31, 10, 0),
    )
    await sale(session, shanghai, [(chips, 5)], paid_at=utc(2025, 4, 1, 5, 0), status="closed")
    # A year before: Tuesday 1 April 2024, noon in Shanghai (ISO week 14 of 2024).
    await sale(session, shanghai, [(cola, 4)], paid_at=utc(2024, 4, 1, 4, 0), method="alipay")
    # Berlin, summer time since 30 March: 21:30 UTC is 23:30 on 31 March there (it is already
    # 1 April in Shanghai). The same member 1 pays in both stores.
    await sale(session, berlin, [(cola, 1)], paid_at=utc(2025, 3, 31, 21, 30), member_id=1)
    # 23:59 on 30 April in Berlin (a month end; 1 May in UTC+8).
    await sale(session, berlin, [(chips, 2)], paid_at=utc(2025, 4, 30, 21, 59), method="alipay")
    # Another store the readers below may not see.
    await sale(session, other, [(cola, 9)], paid_at=utc(2025, 4, 1, 2, 0))
    await refresh.rebuild(session)
    return Chain(shanghai, berlin, other, cola, chips, tea, drinks, snacks)


def figures(
    orders: int | None = 0,
    sales: int = 0,
    refunds: int | None = 0,
    refunds_fen: int = 0,
    items: int = 0,
    aov: int | None = 0,
    ipo: str | None = "0.00",
    members: int | None = 0,
    member_sales: int | None = 0,
) -> dict[str, Any]:
    return {
        "orders": orders,
        "sales_fen": sales,
        "refunds": refunds,
        "refunds_fen": refunds_fen,
        "net_sales_fen": sales - refunds_fen,
        "avg_order_value_fen": aov,
        "items": items,
        "items_per_order": ipo,
        "paying_members": members,
        "member_sales_fen": member_sales,
    }


async def reader(session: AsyncSession, chain: Chain) -> dict[str, str]:
    user = await make_user(session, role="admin", stores=[chain.shanghai, chain.berlin])
    return await auth_headers(session, user)


async def test_by_day_in_each_store_zone(client: httpx.AsyncClient, session: AsyncSession) -> None:
    chain = await build_chain(session)
    h = await reader(session, chain)
    r = await client.get(
        "/api/v1/analytics/sales", params={"start": "2025-03-30", "end": "2025-04-02"}, headers=h
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["store_ids"] == [chain.shanghai.id, chain.berlin.id]
    days = {p["period"]: p for p in body["periods"]}
    assert list(days) == ["2025-03-30", "2025-03-31", "2025-04-01", "2025-04-02"]
    assert days["2025-03-30"]["current"] == figures(1, 350, 0, 0, 1, 350, "1.00", 1, 350)
    assert days["2025-03-30"]["previous"] == figures()
    assert days["2025-03-30"]["last_year"] == figures()
    # Shanghai's 23:59:59 and Berlin's 23:30: both 31 March, one member in two stores.
    assert days["2025-03-31"]["current"] == figures(2, 1050, 0, 0, 3, 525, "1.50", 1, 1050)
    # The order created before midnight and paid after it; the closed one is not a sale.
    assert days["2025-04-01"]["current"] == figures(2, 2200, 0, 0, 5, 1100, "2.50", 1, 1150)
    assert days["2025-04-01"]["previous"] == days["2025-03-31"]["current"]
    assert days["2025-04-01"]["last_year"] == figures(1, 1400, 0, 0, 4, 1400, "4.00", 0, 0)
    # A day with a refund and no order: zeros, not a gap; net below zero.
    assert days["2025-04-02"]["current"] == figures(0, 0, 1, 350, 0, 0, "0.00", 0, 0)
    total = body["total"]
    assert (total["start"], total["end"]) == ("2025-03-30", "2025-04-02")
    assert total["current"] == figures(5, 3600, 1, 350, 9, 720, "1.80", 2, 2550)
    # The four days before (26-29 March) had nothing; the same days of 2024 hold 1 April.
    assert total["previous"] == figures()
    assert total["last_year"] == figures(1, 1400, 0, 0, 4, 1400, "4.00", 0, 0)


async def test_by_iso_week_and_month(client: httpx.AsyncClient, session: AsyncSession) -> None:
    chain = await build_chain(session)
    h = await reader(session, chain)
    r = await client.get(
        "/api/v1/analytics/sales",
        params={"start": "2025-03-30", "end": "2025-04-02", "granularity": "week"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    weeks = {p["period"]: p for p in r.json()["periods"]}
    assert list(weeks) == ["2025-W13", "2025-W14"]
    assert (weeks["2025-W13"]["start"], weeks["2025-W13"]["end"]) == ("2025-03-24", "2025-03-30")
    assert weeks["2025-W13"]["current"] == figures(1, 350, 0, 0, 1, 350, "1.00", 1, 350)
    # 3250 / 4 = 812.5: rounded half up to 813 fen.
    assert weeks["2025-W14"]["current"] == figures(4, 3250, 1, 350, 8, 813, "2.00", 1, 2200)
    assert weeks["2025-W14"]["previous"] == weeks["2025-W13"]["current"]
    assert weeks["2025-W14"]["last_year"] == figures(1, 1400, 0, 0, 4, 1400, "4.00", 0, 0)

    r = await client.get(
        "/api/v1/analytics/sales",
        params={"start": "2025-03-15", "end": "2025-04-30", "granularity": "month"},
        headers=h,
    )
    months = {p["period"]: p for p in r.json()["periods"]}
    assert list(months) == ["2025-03", "2025-04"]
    assert months["2025-03"]["current"] == figures(3, 1400, 0, 0, 4, 467, "1.33", 2, 1400)
    # Berlin's 23:59 on 30 April stays in April.
    assert months["2025-04"]["current"] == figures(3, 3800, 1, 350, 7, 1267, "2.33", 1, 1150)
    assert months["2025-04"]["previous"] == months["2025-03"]["current"]
    assert months["2025-04"]["last_year"] == figures(1, 1400, 0, 0, 4, 1400, "4.00", 0, 0)
    assert r.json()["total"]["current"] == figures(6, 5200, 1, 350, 11, 867, "1.83", 2, 2550)


async def test_a_week_end_in_another_zone(client: httpx.AsyncClient, session: AsyncSession) -> None:
    """Berlin (UTC+2 in April): Sunday 6 April 23:30 there closes ISO week 14, Monday 7 April
    00:30 opens week 15, though both are Sunday in UTC (and Monday in Shanghai)."""
    chain = await build_chain(session)
    h = await reader(session, chain)
    await sale(session, chain.berlin, [(chain.chips, 1)], paid_at=utc(2025, 4, 6, 21, 30))
    await sale(session, chain.berlin, [(chain.cola, 2)], paid_at=utc(2025, 4, 6, 22, 30))
    await refresh.rebuild(session)
    berlin: dict[str, str | int] = {
        "store_id": chain.berlin.id,
        "start": "2025-03-31",
        "end": "2025-04-13",
    }
    r = await client.get(
        "/api/v1/analytics/sales", params={**berlin, "granularity": "week"}, headers=h
    )
    assert r.status_code == 200, r.text
    weeks = {p["period"]: p for p in r.json()["periods"]}
    assert list(weeks) == ["2025-W14", "2025-W15"]
    assert (weeks["2025-W14"]["start"], weeks["2025-W14"]["end"]) == ("2025-03-31", "2025-04-06")
    assert (weeks["2025-W15"]["start"], weeks["2025-W15"]["end"]) == ("2025-04-07", "2025-04-13")
    # 31 March 23:30 (member 1's can) and Sunday's 23:30 bag of chips.
    assert weeks["2025-W14"]["current"] == figures(2, 1150, 0, 0, 2, 575, "1.00", 1, 350)
    assert weeks["2025-W15"]["current"] == figures(1, 700, 0, 0, 2, 700, "2.00", 0, 0)
    assert weeks["2025-W15"]["previous"] == weeks["2025-W14"]["current"]
    assert r.json()["total"]["current"] == figures(3, 1850, 0, 0, 4, 617, "1.33", 1, 350)
    # By day: Sunday and Monday in Berlin.
    r = await client.get(
        "/api/v1/analytics/sales",
        params={**berlin, "start": "2025-04-06", "end": "2025-04-07"},
        headers=h,
    )
    days = {p["period"]: p["current"]["sales_fen"] for p in r.json()["periods"]}
    assert days == {"2025-04-06": 800, "2025-04-07": 700}


async def test_a_city_a_store_a_product_and_a_category(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)
    h = await reader(session, chain)
    month = {"start": "2025-04-01", "end": "2025-04-30", "granularity": "month"}

    async def april(**params: int | str) -> dict[str, Any]:
        r = await client.get("/api/v1/analytics/sales", params={**month, **params}, headers=h)
        assert r.status_code == 200, r.text
        return r.json()["periods"][0]["current"]  # type: ignore[no-any-return]

    assert await april(city="Berlin") == figures(1, 1600, 0, 0, 2, 1600, "2.00", 0, 0)
    assert await april(store_id=chain.berlin.id) == figures(1, 1600, 0, 0, 2, 1600, "2.00", 0, 0)
    assert await april(city="上海") == figures(2, 2200, 1, 350, 5, 1100, "2.50", 1, 1150)
    # The product: orders with it, its units and line amounts, its refunds (the cash order's
    # can), member 1's order of 1 April.
    assert await april(product_id=chain.cola.id) == figures(
        2, 1400, 1, 350, 4, 700, "2.00", 1, None
    )
    # The category and the one below it (crisps): the 1 April order and Berlin's two bags.
    assert await april(category_id=chain.snacks.id) == figures(
        2, 2400, 0, 0, 3, 1200, "1.50", 1, None
    )
    assert await april(category_id=chain.drinks.id, store_id=chain.berlin.id) == figures(
        0, 0, 0, 0, 0, 0, "0.00", 0, None
    )


async def test_rankings_mixes_and_heatmap(client: httpx.AsyncClient, session: AsyncSession) -> None:
    chain = await build_chain(session)
    h = await reader(session, chain)
    window = {"start": "2025-03-30", "end": "2025-04-30"}
    r = await client.get("/api/v1/analytics/products", params=window, headers=h)
    assert r.status_code == 200, r.text
    assert [
        (p["product_id"], p["orders"], p["quantity"], p["sales_fen"], p["refunds_fen"])
        for p in r.json()
    ] == [(chain.cola.id, 5, 8, 2800, 350), (chain.chips.id, 2, 3, 2400, 0)]
    r = await client.get(
        "/api/v1/analytics/products",
        params={**window, "order": "slow", "store_id": chain.shanghai.id},
        headers=h,
    )
    assert [(p["product_id"], p["quantity"]) for p in r.json()] == [
        (chain.tea.id, 0),
        (chain.chips.id, 1),
        (chain.cola.id, 7),
    ]

    r = await client.get("/api/v1/analytics/categories", params=window, headers=h)
    assert [(c["category_id"], c["net_sales_fen"], c["share_bp"]) for c in r.json()] == [
        (chain.drinks.id, 2450, 5052),
        (chain.snacks.id, 2400, 4948),
    ]

    r = await client.get("/api/v1/analytics/payment-methods", params=window, headers=h)
    assert r.json() == [
        {"payment_method": "alipay", "orders": 2, "sales_fen": 2750},
        {"payment_method": "wechat", "orders": 3, "sales_fen": 1400},
        {"payment_method": "manual", "orders": 1, "sales_fen": 1050},
    ]

    r = await client.get(
        "/api/v1/analytics/heatmap", params={"start": "2025-03-30", "end": "2025-04-02"}, headers=h
    )
    cells = {(c["weekday"], c["hour"]): (c["orders"], c["sales_fen"]) for c in r.json()}
    assert len(cells) == 168
    assert cells[(7, 23)] == (1, 350)  # Sunday 23:30 in Shanghai
    assert cells[(1, 23)] == (2, 1050)  # Monday 23:59 Shanghai and 23:30 Berlin
    assert cells[(2, 0)] == (1, 1150)  # paid at 00:00:30 on Tuesday
    assert cells[(2, 11)] == (1, 1050)
    assert sum(v[0] for v in cells.values()) == 5


async def test_bad_windows_and_what_a_user_may_not_see(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    chain = await build_chain(session)
    h = await reader(session, chain)
    url = "/api/v1/analytics/sales"
    r = await client.get(url, params={"start": "2025-04-02", "end": "2025-04-01"}, headers=h)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "end"
    r = await client.get(url, params={"start": "2020-01-01", "end": "2025-04-01"}, headers=h)
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "end"
    r = await client.get(
        url, params={"start": "2015-01-01", "end": "2025-04-01", "granularity": "month"}, headers=h
    )
    assert r.status_code == 422
    r = await client.get(
        "/api/v1/analytics/products",
        params={"start": "2024-01-01", "end": "2025-04-01"},
        headers=h,
    )
    assert r.status_code == 422
    window = {"start": "2025-04-01", "end": "2025-04-01"}
    r = await client.get(url, params={**window, "store_id": chain.other.id}, headers=h)
    assert r.status_code == 404
    assert r.json()["error"] == "store_not_found"
    # A product sold only in a store the reader may not see is not there for them.
    secret = await make_product(session, name="限定款", stores=[chain.other])
    r = await client.get(url, params={**window, "product_id": secret.id}, headers=h)
    assert r.status_code == 404
    assert r.json()["error"] == "product_not_found"
    r = await client.get(url, params={**window, "category_id": 2_000_000_000}, headers=h)
    assert r.status_code == 404
    # The chain, as this reader sees it: the other store's 9 cans of 1 April are not in it.
    r = await client.get(url, params=window, headers=h)
    assert r.json()["total"]["current"]["sales_fen"] == 2200
    r = await client.get(url, params={**window, "city": "杭州"}, headers=h)
    assert r.json()["store_ids"] == []
    assert r.json()["total"]["current"] == figures()
    # Cashiers do not read statistics.
    cashier = await make_user(session, role="cashier", stores=[chain.shanghai])
    r = await client.get(url, params=window, headers=await auth_headers(session, cashier))
    assert r.status_code == 403


WINDOW = {"start": "2025-04-01", "end": "2025-04-01"}
#: every analytics route that takes a store_id (and product_id), with its other parameters
SCOPED = [
    ("/sales", WINDOW, True),
    ("/sales/export", WINDOW, True),
    ("/members", WINDOW, False),
    ("/members/export", WINDOW, False),
    ("/today", {}, False),
    ("/products", WINDOW, False),
    ("/categories", WINDOW, False),
    ("/heatmap", WINDOW, False),
    ("/payment-methods", WINDOW, False),
    ("/stock", WINDOW, False),
    ("/stock/export", WINDOW, False),
]


@pytest.mark.parametrize(("path", "params", "takes_product"), SCOPED, ids=[p for p, _, _ in SCOPED])
async def test_a_store_or_product_one_may_not_see_is_not_found(
    client: httpx.AsyncClient,
    session: AsyncSession,
    path: str,
    params: dict[str, str],
    takes_product: bool,
) -> None:
    """A store (or product) of someone else's is a 404 with no figures in it, the very answer
    for one that does not exist; the reader's own store is answered."""
    chain = await build_chain(session)
    h = await reader(session, chain)
    url = f"/api/v1/analytics{path}"
    r = await client.get(url, params={**params, "store_id": chain.shanghai.id}, headers=h)
    assert r.status_code == 200, r.text
    asked: list[tuple[str, int, str]] = [
        ("store_id", chain.other.id, "store_not_found"),
        ("store_id", 2_000_000_000, "store_not_found"),
    ]
    if takes_product:
        secret = await make_product(session, name="限定款", stores=[chain.other])
        asked += [
            ("product_id", secret.id, "product_not_found"),
            ("product_id", 2_000_000_000, "product_not_found"),
        ]
    answers = []
    for name, value, code in asked:
        r = await client.get(url, params={**params, name: value}, headers=h)
        assert r.status_code == 404, (name, value, r.text)
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert set(body) <= {"error", "message", "details", "request_id"}, body
        assert body["error"] == code
        assert [d["field"] for d in body["details"]] == [name]
        answers.append({k: v for k, v in body.items() if k != "request_id"})
    # Someone else's and no one's read alike.
    assert answers[0] == answers[1]
    if takes_product:
        assert answers[2] == answers[3]
