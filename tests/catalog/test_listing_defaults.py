"""New and imported products are listed in the stores their creator chooses (all of theirs by
default); bulk listing; and low-stock alerts that follow threshold and listing changes."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog import listing
from selfmart.inventory import notifications
from selfmart.models import (
    AuditLog,
    OutboxEvent,
    Product,
    ProductBarcode,
    StockAlert,
    Store,
    StoreProduct,
)

from ..builders import make_store
from ..inventory.builders import stock
from .helpers import ean13, headers_for, make_product
from .test_bulk import preview_and_apply
from .test_import import IMPORT, row, xlsx

PRODUCTS = "/api/v1/products"


async def _listed(session: AsyncSession, product_id: int) -> list[int]:
    stmt = select(StoreProduct.store_id).where(
        StoreProduct.product_id == product_id, StoreProduct.is_listed.is_(True)
    )
    return sorted((await session.scalars(stmt)).all())


async def _open_alerts(session: AsyncSession, product_id: int) -> list[tuple[int, int, int]]:
    stmt = select(StockAlert.store_id, StockAlert.quantity, StockAlert.threshold).where(
        StockAlert.product_id == product_id, StockAlert.status == "open"
    )
    rows = await session.execute(stmt.order_by(StockAlert.store_id))
    return sorted((int(s), int(q or 0), int(t or 0)) for s, q, t in rows)


async def _announced(session: AsyncSession) -> list[list[int]]:
    stmt = select(OutboxEvent.payload).where(OutboxEvent.topic == notifications.ALERTS_OPENED)
    return [list(p["alert_ids"]) for p in (await session.scalars(stmt.order_by(OutboxEvent.id)))]


def _new(**fields: Any) -> dict[str, Any]:
    return {"name": "加多宝凉茶", "price_fen": 450, "barcodes": [ean13()], **fields}


async def test_a_new_product_is_listed_in_the_creators_stores_unless_they_choose(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a, b, theirs = await make_store(session), await make_store(session), await make_store(session)
    h = await headers_for(session, role="admin", stores=[a, b])

    r = await client.post(PRODUCTS, headers=h, json=_new())
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert await _listed(session, pid) == [a.id, b.id]
    entry = await session.scalar(
        select(AuditLog).where(AuditLog.action == "product.create", AuditLog.entity_id == str(pid))
    )
    assert entry is not None
    assert entry.changes["listed_in_stores"]["after"] == [a.id, b.id]

    r = await client.post(PRODUCTS, headers=h, json=_new(store_ids=[b.id]))
    assert await _listed(session, r.json()["id"]) == [b.id]
    r = await client.post(PRODUCTS, headers=h, json=_new(store_ids=[]))
    assert await _listed(session, r.json()["id"]) == []

    before = await session.scalar(select(func.count()).select_from(StoreProduct))
    r = await client.post(PRODUCTS, headers=h, json=_new(store_ids=[a.id, theirs.id]))
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["details"]] == ["store_ids[1]"]
    assert await session.scalar(select(func.count()).select_from(StoreProduct)) == before


async def test_import_lists_new_products_in_the_chosen_stores(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a, b = await make_store(session), await make_store(session)
    h = await headers_for(session, role="admin", stores=[a, b])
    existing_code = ean13()
    existing = await make_product(session, "老商品", barcodes=[existing_code], stores=[a])
    new_code = ean13()
    data = xlsx([row(new_code, "新商品"), row(existing_code, "老商品 改名")])
    r = await client.post(
        IMPORT, headers=h, files={"file": ("goods.xlsx", data)}, data={"store_ids": [str(b.id)]}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"]) == (1, 1)
    pid = await session.scalar(
        select(ProductBarcode.product_id).where(ProductBarcode.code == new_code)
    )
    assert pid is not None
    assert await _listed(session, pid) == [b.id]
    assert await _listed(session, existing.id) == [a.id]  # an update keeps its listings

    r = await client.post(
        IMPORT, headers=h, files={"file": ("goods.xlsx", xlsx([row(ean13(), "默认")]))}
    )
    default_pid = await session.scalar(
        select(AuditLog.entity_id)
        .where(AuditLog.action == "product.create")
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    assert default_pid is not None
    assert await _listed(session, int(default_pid)) == [a.id, b.id]

    r = await client.post(
        IMPORT,
        headers=h,
        files={"file": ("goods.xlsx", xlsx([row(ean13(), "不上架")]))},
        data={"list_in_stores": "false"},
    )
    assert r.status_code == 200, r.text
    nowhere = await session.scalar(
        select(AuditLog.entity_id)
        .where(AuditLog.action == "product.create")
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    assert nowhere is not None
    assert await _listed(session, int(nowhere)) == []

    other = await make_store(session)
    r = await client.post(
        IMPORT,
        headers=h,
        files={"file": ("goods.xlsx", xlsx([row(ean13(), "别家")]))},
        data={"store_ids": [str(other.id)]},
    )
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "store_ids[0]"


async def test_bulk_listing_and_unlisting_is_previewed_applied_and_audited(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    a, b = await make_store(session), await make_store(session)
    h = await headers_for(session, role="admin", stores=[a, b])
    p1 = await make_product(session, "康师傅冰红茶", spec="250ml")
    p2 = await make_product(session, "康师傅冰红茶", spec="500ml", stores=[a])
    body: dict[str, Any] = {
        "selection": {"ids": [p1.id, p2.id]},
        "action": {"op": "set_listing", "listed": True},
    }
    preview, result = await preview_and_apply(client, h, body)
    # p2 is already listed in a: three listings change, not four
    assert preview["changed"] == 3
    assert {(c["product_id"], c["store_id"]) for c in result["changes"]} == {
        (p1.id, a.id),
        (p1.id, b.id),
        (p2.id, b.id),
    }
    assert await _listed(session, p1.id) == [a.id, b.id]
    assert await _listed(session, p2.id) == [a.id, b.id]
    audited = await session.scalar(
        select(func.count())
        .select_from(AuditLog)
        .where(AuditLog.action == "product.bulk_set_listing")
    )
    assert audited == 3

    body["action"] = {"op": "set_listing", "listed": False, "store_ids": [b.id]}
    _, result = await preview_and_apply(client, h, body)
    assert result["changed"] == 2
    assert await _listed(session, p1.id) == [a.id]
    assert await _listed(session, p2.id) == [a.id]


async def test_alerts_follow_threshold_changes_creation_and_listing_and_are_announced_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store: Store = await make_store(session)
    h = await headers_for(session, role="admin", stores=[store])
    p = await make_product(session, "加多宝凉茶", low_stock_threshold=2, stores=[store])
    await stock(session, store.id, p.id, 8)
    assert await _open_alerts(session, p.id) == []

    # raising the threshold above the stock: the stock page says low, so does an alert
    r = await client.patch(f"{PRODUCTS}/{p.id}", headers=h, json={"low_stock_threshold": 10})
    assert r.status_code == 200, r.text
    assert await _open_alerts(session, p.id) == [(store.id, 8, 10)]
    announced = await _announced(session)
    assert len(announced) == 1
    # still low after another change: the same alert, not announced again
    await client.patch(f"{PRODUCTS}/{p.id}", headers=h, json={"low_stock_threshold": 12})
    assert len(await _open_alerts(session, p.id)) == 1
    assert await _announced(session) == announced
    # back under the stock: closed
    await client.patch(f"{PRODUCTS}/{p.id}", headers=h, json={"low_stock_threshold": 3})
    assert await _open_alerts(session, p.id) == []
    # the store's own threshold counts too
    url = f"/api/v1/stores/{store.id}/products/{p.id}"
    r = await client.put(url, headers=h, json={"low_stock_threshold": 9})
    assert r.status_code == 200, r.text
    assert await _open_alerts(session, p.id) == [(store.id, 8, 9)]

    # a new product listed in the store has nothing on the shelf: alerted, once
    r = await client.post(PRODUCTS, headers=h, json=_new(low_stock_threshold=5))
    new_id = r.json()["id"]
    assert await _open_alerts(session, new_id) == [(store.id, 0, 5)]
    assert len(await _announced(session)) == 3

    # an import that raises a threshold above the stock alerts as well
    code = ean13()
    q = await make_product(
        session, "王老吉", barcodes=[code], low_stock_threshold=1, stores=[store]
    )
    await stock(session, store.id, q.id, 4)
    r = await client.post(
        IMPORT,
        headers=h,
        files={"file": ("goods.xlsx", xlsx([row(code, "王老吉", 库存预警=6)]))},
    )
    assert r.status_code == 200, r.text
    assert await _open_alerts(session, q.id) == [(store.id, 4, 6)]

    # bulk threshold changes too
    body: dict[str, Any] = {
        "selection": {"ids": [q.id]},
        "action": {"op": "set_threshold", "low_stock_threshold": 0},
    }
    await preview_and_apply(client, h, body)
    assert await _open_alerts(session, q.id) == []


async def test_listing_thousands_of_products_in_many_stores_at_once(
    session: AsyncSession,
) -> None:
    # 600 new products in 9 stores: 5,400 listings and as many "out of stock" alerts, more
    # rows than one multi-row statement may carry parameters for.
    stores = [await make_store(session) for _ in range(9)]
    ids = list(
        (
            await session.scalars(
                insert(Product).returning(Product.id),
                [
                    {"name": f"批量{i}", "price_fen": 100, "low_stock_threshold": 1}
                    for i in range(600)
                ],
            )
        ).all()
    )
    await listing.set_listed(session, ids, [s.id for s in stores])
    listed = await session.scalar(
        select(func.count()).select_from(StoreProduct).where(StoreProduct.product_id.in_(ids))
    )
    opened = await session.scalar(
        select(func.count()).select_from(StockAlert).where(StockAlert.product_id.in_(ids))
    )
    assert (listed, opened) == (5400, 5400)
    # announced once each: one event per store and chunk of 500 products
    events = await _announced(session)
    assert len(events) == 9 * 2
    assert sum(len(e) for e in events) == 5400
