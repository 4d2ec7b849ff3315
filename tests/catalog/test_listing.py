"""Per-store listing with store prices, store scoping, and the functions other domains call."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog import service as catalog
from selfmart.catalog.exceptions import ProductNotFound

from ..builders import make_store
from .helpers import audit_count, ean13, headers_for, make_product


async def test_list_price_and_unlist(client: httpx.AsyncClient, session: AsyncSession) -> None:
    store = await make_store(session)
    h = await headers_for(session, role="admin", stores=[store])
    product = await make_product(session, price_fen=350, low_stock_threshold=10)
    url = f"/api/v1/stores/{store.id}/products/{product.id}"
    r = await client.put(url, headers=h, json={"store_price_fen": 399})
    assert r.status_code == 200, r.text
    assert r.json()["effective_price_fen"] == 399
    assert r.json()["effective_low_stock_threshold"] == 10
    r = await client.put(url, headers=h, json={"store_price_fen": None, "low_stock_threshold": 3})
    assert r.json()["effective_price_fen"] == 350
    assert r.json()["effective_low_stock_threshold"] == 3
    r = await client.put(url, headers=h, json={"store_price_fen": 3.99})
    assert r.status_code == 422
    page = (await client.get(f"/api/v1/stores/{store.id}/products", headers=h)).json()
    assert page["total"] == 1
    assert page["items"][0]["product_id"] == product.id
    listings = (await client.get(f"/api/v1/products/{product.id}/stores", headers=h)).json()
    assert [x["store_id"] for x in listings] == [store.id]
    assert (await client.delete(url, headers=h)).status_code == 204
    assert (await client.delete(url, headers=h)).status_code == 404
    assert await audit_count(session, "product.list", product.id) == 1
    assert await audit_count(session, "product.listing_update", product.id) == 1
    assert await audit_count(session, "product.unlist", product.id) == 1


async def test_another_store_is_404(client: httpx.AsyncClient, session: AsyncSession) -> None:
    mine, other = await make_store(session), await make_store(session)
    h = await headers_for(session, role="admin", stores=[mine])
    product = await make_product(session, stores=[mine, other])
    r = await client.put(f"/api/v1/stores/{other.id}/products/{product.id}", headers=h, json={})
    assert r.status_code == 404
    assert r.json()["error"] == "store_not_found"
    assert (await client.get(f"/api/v1/stores/{other.id}/products", headers=h)).status_code == 404
    # the product's listings show only the stores this user sees
    listings = (await client.get(f"/api/v1/products/{product.id}/stores", headers=h)).json()
    assert [x["store_id"] for x in listings] == [mine.id]


async def test_functions_for_orders_and_inventory(session: AsyncSession) -> None:
    store, other = await make_store(session), await make_store(session)
    code = ean13()
    cola = await make_product(
        session,
        "可口可乐",
        price_fen=350,
        member_price_fen=320,
        barcodes=[code],
        low_stock_threshold=10,
        stores=[store],
    )
    cheap = await make_product(session, "雪碧", price_fen=300, member_price_fen=290)
    from selfmart.models import StoreProduct

    session.add(
        StoreProduct(
            store_id=store.id, product_id=cheap.id, store_price_fen=250, low_stock_threshold=4
        )
    )
    await session.flush()

    items = await catalog.sale_items(session, store.id, barcodes=[code], product_ids=[cheap.id])
    assert items[cola.id].price_fen == 350
    assert items[cola.id].member_price_fen == 320
    assert items[cola.id].listed
    assert items[cola.id].on_sale
    # a store price lower than the member price: members pay the store price
    assert items[cheap.id].price_fen == 250
    assert items[cheap.id].member_price_fen == 250
    elsewhere = await catalog.sale_items(session, other.id, product_ids=[cola.id])
    assert not elsewhere[cola.id].listed
    assert elsewhere[cola.id].price_fen == 350

    assert await catalog.price_for(session, store.id, cola.id) == 350
    assert await catalog.price_for(session, store.id, cola.id, member=True) == 320
    with pytest.raises(ProductNotFound):
        await catalog.price_for(session, store.id, 987654)
    assert await catalog.low_stock_thresholds(session, store.id, [cola.id, cheap.id]) == {
        cola.id: 10,
        cheap.id: 4,
    }
    found = await catalog.get_by_barcode(session, code.lower())
    assert found is not None
    assert found.id == cola.id
    assert await catalog.get_by_barcode(session, "6901939621257") is None
    assert await catalog.listed_product_ids(session, store.id) == sorted([cola.id, cheap.id])
