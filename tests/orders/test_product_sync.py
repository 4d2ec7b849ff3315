"""Terminals fetch their store's products with prices and barcodes: all, or changes since."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import Product, ProductBarcode, StoreProduct
from selfmart.orders.productsync import from_version
from tests.builders import make_store
from tests.orders.builders import make_product
from tests.terminals.builders import Credentials, make_active_terminal


async def _get(client: httpx.AsyncClient, creds: Credentials, target: str) -> httpx.Response:
    return await client.get(target, headers=creds.sign("GET", target))


async def _stamp(session: AsyncSession, moment: datetime, product_id: int | None = None) -> None:
    """Date the products (or one), their listings and barcodes as written at `moment`."""

    def only(stmt: Any, column: Any) -> Any:
        return stmt if product_id is None else stmt.where(column == product_id)

    for p in (await session.scalars(only(select(Product), Product.id))).all():
        p.updated_at = moment
    listings = only(select(StoreProduct), StoreProduct.product_id)
    for row in (await session.scalars(listings)).all():
        row.updated_at = moment
    for code in await session.scalars(only(select(ProductBarcode), ProductBarcode.product_id)):
        code.created_at = moment
    await session.flush()


async def test_full_download_then_only_changes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    other = await make_store(session)
    cola = await make_product(session, stores=[store], price_fen=350, member_price_fen=300)
    chips = await make_product(
        session, name="乐事薯片", stores=[store], price_fen=800, store_price_fen=750
    )
    await make_product(session, name="别店商品", stores=[other])
    await make_product(session, name="下架商品", stores=[store], status="off_sale")
    # Made an hour ago: long settled (see LATE_COMMIT_WINDOW), so the version is their time.
    await _stamp(session, utcnow() - timedelta(hours=1))
    creds = await make_active_terminal(session, store)

    r = await _get(client, creds, "/api/terminal/v1/products")
    assert r.status_code == 200, r.text
    full = r.json()
    assert full["full"] is True
    assert full["removed"] == []
    by_id = {i["product_id"]: i for i in full["items"]}
    assert set(by_id) == {cola.id, chips.id}
    assert by_id[cola.id]["price_fen"] == 350
    assert by_id[cola.id]["member_price_fen"] == 300
    assert by_id[chips.id]["price_fen"] == 750  # the store's own price
    assert len(by_id[cola.id]["barcodes"]) == 1

    # Nothing changed: an empty delta at the same version.
    target = f"/api/terminal/v1/products?since={full['version']}"
    delta = (await _get(client, creds, target)).json()
    assert delta == {"version": full["version"], "full": False, "items": [], "removed": []}

    # A price change, a new barcode, and an unlisting come back as changes.
    later = utcnow() + timedelta(seconds=1)
    cola.price_fen = 380
    cola.updated_at = later
    session.add(
        ProductBarcode(product_id=chips.id, code="6901234567892", kind="ean13", created_at=later)
    )
    sp = await session.scalar(
        select(StoreProduct).where(
            StoreProduct.store_id == store.id, StoreProduct.product_id == chips.id
        )
    )
    assert sp is not None
    await session.flush()
    delta = (await _get(client, creds, target)).json()
    assert {i["product_id"] for i in delta["items"]} == {cola.id, chips.id}
    assert next(i for i in delta["items"] if i["product_id"] == cola.id)["price_fen"] == 380
    assert (
        "6901234567892"
        in next(i for i in delta["items"] if i["product_id"] == chips.id)["barcodes"]
    )
    assert delta["version"] > full["version"]

    sp.is_listed = False
    sp.updated_at = later + timedelta(seconds=1)
    await session.flush()
    delta = (
        await _get(client, creds, f"/api/terminal/v1/products?since={delta['version']}")
    ).json()
    assert delta["removed"] == [chips.id]
    # Cola's change is from the last moments (it may have late-committing siblings): it comes
    # again, which a terminal applying upserts takes in its stride.
    assert [i["product_id"] for i in delta["items"]] == [cola.id]

    assert (await client.get("/api/terminal/v1/products")).status_code == 401


async def test_a_change_committed_after_a_later_one_was_synced_still_arrives(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A change time is taken at write, not at commit: a bulk edit stamped at t0 can commit
    after a terminal synced and saw another change stamped t1 > t0. The next sync must still
    bring the t0 change."""
    store = await make_store(session)
    first = await make_product(session, name="先提交", stores=[store], price_fen=350)
    t1 = utcnow() - timedelta(seconds=10)
    await _stamp(session, t1, first.id)
    creds = await make_active_terminal(session, store)
    held = (await _get(client, creds, "/api/terminal/v1/products")).json()["version"]
    # The version given is the settled past, not t1.
    assert from_version(held) < t1

    # Stamped t0 < t1, committed only now.
    late = await make_product(session, name="后提交", stores=[store], price_fen=500)
    t0 = utcnow() - timedelta(seconds=20)
    late.updated_at = t0  # the product, its listing and its barcode, all written at t0
    for row in (await session.scalars(select(StoreProduct).filter_by(product_id=late.id))).all():
        row.updated_at = t0
    for code in await session.scalars(select(ProductBarcode).filter_by(product_id=late.id)):
        code.created_at = t0
    await session.flush()
    delta = (await _get(client, creds, f"/api/terminal/v1/products?since={held}")).json()
    assert late.id in {i["product_id"] for i in delta["items"]}
    assert delta["version"] >= held


async def test_a_version_past_any_date_is_a_422_naming_it(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store = await make_store(session)
    creds = await make_active_terminal(session, store)
    target = f"/api/terminal/v1/products?since={2**63 - 1}"
    r = await _get(client, creds, target)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["details"]] == ["query.since"]
