"""Builders and helpers for the catalog tests."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog.barcodes import with_check_digit
from selfmart.catalog.pinyin import search_keys
from selfmart.models import (
    AuditLog,
    Category,
    Product,
    ProductBarcode,
    ProductTag,
    Store,
    StoreProduct,
    Tag,
    User,
)

from ..builders import auth_headers, make_user

PRODUCTS = "/api/v1/products"
_serial = itertools.count(1)


def ean13(prefix: str = "690") -> str:
    """A fresh valid EAN-13 (unique within a test run)."""
    body = f"{prefix}{next(_serial):0{12 - len(prefix)}d}"
    return with_check_digit(body)


async def headers_for(
    session: AsyncSession, *, role: str = "super_admin", stores: list[Store] | None = None
) -> dict[str, str]:
    user: User = await make_user(session, role=role, stores=stores)
    return await auth_headers(session, user)


async def make_category(
    session: AsyncSession, name: str, parent: Category | None = None, sort_order: int = 0
) -> Category:
    category = Category(
        name=name,
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 1,
        sort_order=sort_order,
    )
    session.add(category)
    await session.flush()
    category.path = f"{parent.path if parent else '/'}{category.id}/"
    await session.flush()
    return category


async def make_tag(session: AsyncSession, name: str) -> Tag:
    tag = Tag(name=name)
    session.add(tag)
    await session.flush()
    return tag


async def make_product(
    session: AsyncSession,
    name: str = "可口可乐 汽水",
    *,
    price_fen: int = 350,
    brand: str = "",
    barcodes: list[str] | None = None,
    category: Category | None = None,
    tags: list[Tag] | None = None,
    stores: list[Store] | None = None,
    **fields: Any,
) -> Product:
    product = Product(
        name=name,
        brand=brand,
        price_fen=price_fen,
        category_id=category.id if category else None,
        **fields,
    )
    product.pinyin_full, product.pinyin_initials = search_keys(name, brand)
    session.add(product)
    await session.flush()
    for code in barcodes if barcodes is not None else [ean13()]:
        session.add(ProductBarcode(product_id=product.id, code=code, kind="ean13"))
    for tag in tags or []:
        session.add(ProductTag(product_id=product.id, tag_id=tag.id))
    for store in stores or []:
        session.add(StoreProduct(store_id=store.id, product_id=product.id))
    await session.flush()
    return product


async def audit_count(session: AsyncSession, action: str, entity_id: object | None = None) -> int:
    stmt = select(func.count()).select_from(AuditLog).where(AuditLog.action == action)
    if entity_id is not None:
        stmt = stmt.where(AuditLog.entity_id == str(entity_id))
    return int(await session.scalar(stmt) or 0)


async def product_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Product)) or 0)
