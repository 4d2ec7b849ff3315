"""Stock analysis ties out to a known ledger: receipts, sales, a customer return, stocktake
losses and gains, a write-off and an adjustment, in Asia/Shanghai and in Europe/Berlin, with
movements one second either side of the window's local midnights."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.models import Product, StockMovement, Store
from tests.analytics.test_statistics import utc
from tests.builders import auth_headers, make_store, make_user
from tests.catalog.helpers import make_category
from tests.orders.builders import make_product

WINDOW = {"start": "2025-04-01", "end": "2025-04-10"}


class Ledger:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.balance: dict[tuple[int, int], int] = defaultdict(int)

    async def move(
        self, store: Store, product: Product, kind: str, quantity: int, at: datetime
    ) -> None:
        key = (store.id, product.id)
        self.balance[key] += quantity
        self.session.add(
            StockMovement(
                store_id=store.id,
                product_id=product.id,
                kind=kind,
                quantity=quantity,
                balance_after=self.balance[key],
                reason="盘点" if kind in ("adjustment", "write_off") else None,
                actor_type="user",
                actor_name="test",
                occurred_at=at,
            )
        )
        await self.session.flush()


def stock(
    products: int,
    opening: int,
    received: int,
    sold: int,
    closing: int,
    value: int,
    sell_through: int | None,
    turnover: str | None,
    shrinkage: int = 0,
    shrinkage_fen: int = 0,
) -> dict[str, Any]:
    return {
        "products": products,
        "opening_qty": opening,
        "received_qty": received,
        "sold_qty": sold,
        "shrinkage_qty": shrinkage,
        "shrinkage_fen": shrinkage_fen,
        "closing_qty": closing,
        "stock_value_fen": value,
        "sell_through_bp": sell_through,
        "turnover_days": turnover,
    }


async def test_stock_analysis_from_a_known_ledger(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shanghai = await make_store(session, name="人民广场店", city="上海", timezone="Asia/Shanghai")
    berlin = await make_store(session, name="Mitte", city="Berlin", timezone="Europe/Berlin")
    other = await make_store(session, name="别的店", city="杭州", timezone="Asia/Shanghai")
    drinks = await make_category(session, "饮料")
    snacks = await make_category(session, "零食")
    cola = await make_product(session, name="可乐", stores=[shanghai, berlin, other])
    chips = await make_product(session, name="薯片", stores=[shanghai])
    tea = await make_product(session, name="绿茶", stores=[berlin])
    cola.category_id, cola.cost_fen = drinks.id, 200
    chips.category_id, chips.cost_fen = snacks.id, 500
    tea.category_id, tea.cost_fen = None, 100
    await session.flush()

    led = Ledger(session)
    # Shanghai (UTC+8): 23:59:59 on 31 March is before the window, 00:00:00 on 1 April in it.
    await led.move(shanghai, cola, "purchase_receipt", 100, utc(2025, 3, 31, 15, 59, 59))
    await led.move(shanghai, cola, "purchase_receipt", 50, utc(2025, 3, 31, 16, 0, 0))
    await led.move(shanghai, cola, "sale", -30, utc(2025, 4, 3, 2))
    await led.move(shanghai, cola, "customer_return", 5, utc(2025, 4, 4, 2))
    await led.move(shanghai, cola, "sale", -15, utc(2025, 4, 5, 2))
    await led.move(shanghai, cola, "stocktake_loss", -4, utc(2025, 4, 6, 2))
    await led.move(shanghai, cola, "write_off", -2, utc(2025, 4, 7, 2))
    await led.move(shanghai, cola, "stocktake_gain", 1, utc(2025, 4, 8, 2))
    await led.move(shanghai, cola, "adjustment", 3, utc(2025, 4, 9, 2))  # moves the balance only
    await led.move(shanghai, cola, "sale", -10, utc(2025, 4, 10, 16, 0, 0))  # 11 April there
    await led.move(shanghai, chips, "purchase_receipt", 20, utc(2025, 3, 1, 2))
    await led.move(shanghai, chips, "sale", -20, utc(2025, 4, 10, 15, 59, 59))
    # Berlin (UTC+2 since 30 March): 21:59 UTC on 31 March is still 31 March there.
    await led.move(berlin, cola, "purchase_receipt", 10, utc(2025, 3, 31, 21, 59))
    await led.move(berlin, cola, "sale", -4, utc(2025, 4, 10, 21, 30))  # 23:30 on 10 April
    await led.move(berlin, tea, "transfer_in", 8, utc(2025, 4, 2, 8))
    # A store the reader may not see.
    await led.move(other, cola, "purchase_receipt", 999, utc(2025, 4, 2, 2))

    user = await make_user(session, role="admin", stores=[shanghai, berlin])
    h = await auth_headers(session, user)
    r = await client.get("/api/v1/analytics/stock", params=WINDOW, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["days"], body["store_ids"]) == (10, [shanghai.id, berlin.id])
    # Shanghai: available 120 + 50, sold 30 - 5 + 15 + 20 = 60: 3529 bp; average stock
    # (120 + 108) / 2 = 114 over 6 a day: 19.0 days; shrinkage 4 + 2 - 1 = 5 cans at 2 yuan.
    assert body["by_store"] == [
        {"store_id": shanghai.id, "name": "人民广场店",
         **stock(2, 120, 50, 60, 108, 21600, 3529, "19.0", 5, 1000)},
        {"store_id": berlin.id, "name": "Mitte", **stock(2, 10, 8, 4, 14, 2000, 2222, "30.0")},
    ]  # fmt: skip
    assert body["by_category"] == [
        {"category_id": drinks.id, "name": "饮料",
         **stock(1, 110, 50, 44, 114, 22800, 2750, "25.5", 5, 1000)},
        {"category_id": snacks.id, "name": "零食", **stock(1, 20, 0, 20, 0, 0, 10000, "5.0")},
        # Nothing sold: sell-through 0, turnover undefined.
        {"category_id": None, "name": None, **stock(1, 0, 8, 0, 8, 800, 0, None)},
    ]  # fmt: skip
    # (130 + 122) / 2 = 126 units over 6.4 a day: 19.6875 days, 19.7 half up.
    assert body["total"] == stock(3, 130, 58, 64, 122, 23600, 3404, "19.7", 5, 1000)

    r = await client.get(
        "/api/v1/analytics/stock", params={**WINDOW, "category_id": snacks.id}, headers=h
    )
    assert r.json()["total"] == stock(1, 20, 0, 20, 0, 0, 10000, "5.0")
    r = await client.get(
        "/api/v1/analytics/stock", params={**WINDOW, "store_id": berlin.id}, headers=h
    )
    assert [s["store_id"] for s in r.json()["by_store"]] == [berlin.id]

    # Another store's id: as if it did not exist; a reversed or too long window: 422 on end.
    r = await client.get(
        "/api/v1/analytics/stock", params={**WINDOW, "store_id": other.id}, headers=h
    )
    assert r.status_code == 404, r.text
    for bad in (
        {"start": "2025-04-10", "end": "2025-04-01"},
        {"start": "2024-01-01", "end": "2025-04-01"},
    ):
        r = await client.get("/api/v1/analytics/stock", params=bad, headers=h)
        assert r.status_code == 422, r.text
        assert r.json()["details"][0]["field"] == "end"

    # An empty window before any movement: zeros, nothing undefined but the ratios.
    r = await client.get(
        "/api/v1/analytics/stock", params={"start": "2025-01-01", "end": "2025-01-31"}, headers=h
    )
    assert r.json()["total"] == stock(0, 0, 0, 0, 0, 0, None, None)
