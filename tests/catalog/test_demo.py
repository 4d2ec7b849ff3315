"""The demo catalogue: realistic, valid, listed in every demo store, and idempotent."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog.barcodes import parse_barcode
from selfmart.catalog.demo import demo_products
from selfmart.demo import DEMO_STORES, seed_demo
from selfmart.models import Category, Product, ProductBarcode, Store, StoreProduct


def test_demo_products_are_valid_and_stable() -> None:
    products = demo_products()
    assert len(products) >= 200
    assert products == demo_products()
    codes = [p.barcode for p in products]
    assert len(set(codes)) == len(codes)
    assert all(parse_barcode(c).kind == "ean13" for c in codes)
    assert all(p.price_fen > 0 and 0 < p.cost_fen < p.price_fen for p in products)
    assert all(p.member_price_fen is None or p.member_price_fen < p.price_fen for p in products)


async def test_seed_is_idempotent_and_lists_every_store(demo_session: AsyncSession) -> None:
    n = await demo_session.scalar(select(func.count()).select_from(Product))
    await seed_demo(demo_session)
    assert await demo_session.scalar(select(func.count()).select_from(Product)) == n
    assert (n or 0) >= len(demo_products())
    cola = await demo_session.scalar(
        select(Product)
        .join(ProductBarcode)
        .where(ProductBarcode.code == demo_products()[1].barcode)
    )
    assert cola is not None
    assert (cola.name, cola.spec, cola.price_fen) == ("可口可乐", "500ml", 350)
    assert cola.pinyin_initials.startswith("kkkl")
    top = (await demo_session.scalars(select(Category.name).where(Category.depth == 1))).all()
    assert {"饮料", "零食", "粮油", "日化"} <= set(top)
    for code, *_ in DEMO_STORES:
        store_id = await demo_session.scalar(select(Store.id).where(Store.code == code))
        listed = await demo_session.scalar(
            select(func.count())
            .select_from(StoreProduct)
            .where(StoreProduct.store_id == store_id, StoreProduct.is_listed.is_(True))
        )
        assert (listed or 0) >= 200
