"""Same-name products are told apart wherever they are listed: every list that names a product
also gives its spec and barcode (the stocktake sheet, the ledger, alerts, transfers, purchase
orders, reorder suggestions, a supplier's products, bulk stock changes)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.inventory import service as inventory
from selfmart.models import ProductBarcode, Supplier, SupplierProduct

from ..builders import auth_headers, make_store, make_user
from ..inventory.builders import CLERK, make_product, stock


def _labels(items: list[dict[str, Any]]) -> set[tuple[str, str, str | None]]:
    return {(i["product_name"], i["spec"], i["barcode"]) for i in items}


async def test_every_product_list_gives_spec_and_barcode(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, other = await make_store(session), await make_store(session)
    can = await make_product(session, name="加多宝凉茶", spec="310ml罐装", low_stock_threshold=5)
    bottle = await make_product(session, name="加多宝凉茶", spec="500ml瓶装", low_stock_threshold=5)
    session.add_all(
        [
            ProductBarcode(product_id=can.id, code="6938888889896", kind="ean13"),
            ProductBarcode(product_id=bottle.id, code="6938888888882", kind="ean13"),
        ]
    )
    supplier = Supplier(code="SUP-L", name="王老吉批发")
    session.add(supplier)
    await session.flush()
    session.add_all(
        [
            SupplierProduct(supplier_id=supplier.id, product_id=p.id, cost_fen=300)
            for p in (can, bottle)
        ]
    )
    await session.flush()
    for p in (can, bottle):
        await stock(session, store.id, p.id, 10)
        await inventory.adjust(
            session, store_id=store.id, product_id=p.id, actor=CLERK, reason="damaged", delta=-7
        )
    want = {
        ("加多宝凉茶", "310ml罐装", "6938888889896"),
        ("加多宝凉茶", "500ml瓶装", "6938888888882"),
    }
    user = await make_user(session, role="admin", stores=[store, other])
    h = await auth_headers(session, user)
    lines = [{"product_id": can.id, "quantity": 1}, {"product_id": bottle.id, "quantity": 1}]

    r = await client.get(f"/api/v1/stores/{store.id}/stock/movements", headers=h)
    assert _labels(r.json()["items"]) == want

    r = await client.get("/api/v1/stock-alerts", params={"store_id": store.id}, headers=h)
    assert r.status_code == 200, r.text
    assert _labels(r.json()["items"]) == want

    r = await client.get(f"/api/v1/suppliers/{supplier.id}", headers=h)
    assert _labels(r.json()["products"]) == want

    r = await client.post(
        "/api/v1/purchase-orders",
        json={"store_id": store.id, "supplier_id": supplier.id, "lines": lines},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert _labels(r.json()["lines"]) == want

    r = await client.post(
        "/api/v1/transfers",
        json={"from_store_id": store.id, "to_store_id": other.id, "lines": lines},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert _labels(r.json()["lines"]) == want

    r = await client.post("/api/v1/stocktakes", json={"store_id": store.id}, headers=h)
    assert r.status_code == 201, r.text
    assert _labels(r.json()["lines"]) >= want

    r = await client.get(f"/api/v1/stores/{store.id}/reorder-suggestions", headers=h)
    assert r.status_code == 200, r.text
    assert _labels(r.json()) == want

    r = await client.post(
        "/api/v1/stock/bulk/preview",
        json={
            "store_id": store.id,
            "product_ids": [can.id, bottle.id],
            "mode": "adjust",
            "value": 1,
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert _labels(r.json()["lines"]) == want
