"""Builders for inventory tests: products (until the catalogue has its own) and stock."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.models import Product, StoreProduct

CLERK = Actor(kind="user", id=1, name="clerk", store_ids=None)


async def make_product(
    session: AsyncSession,
    *,
    name: str | None = None,
    price_fen: int = 350,
    low_stock_threshold: int = 0,
    **fields: object,
) -> Product:
    product = Product(
        name=name or f"商品{uuid.uuid4().hex[:6]}",
        price_fen=price_fen,
        low_stock_threshold=low_stock_threshold,
        **fields,
    )
    session.add(product)
    await session.flush()
    return product


async def list_in_store(
    session: AsyncSession, store_id: int, product_id: int, *, threshold: int | None = None
) -> StoreProduct:
    sp = StoreProduct(store_id=store_id, product_id=product_id, low_stock_threshold=threshold)
    session.add(sp)
    await session.flush()
    return sp


async def stock(session: AsyncSession, store_id: int, product_id: int, quantity: int) -> None:
    """Opening stock booked as a purchase receipt."""
    await inventory.receive(
        session,
        store_id=store_id,
        lines=[inventory.ReceiptLine(product_id, quantity)],
        document=("test_receipt", uuid.uuid4().hex[:8]),
        actor=CLERK,
    )
