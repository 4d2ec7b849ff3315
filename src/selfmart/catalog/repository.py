"""Catalog queries: the product search every list, export and bulk edit shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from selfmart.catalog.pinyin import normalise_query
from selfmart.catalog.schemas import ProductFilter
from selfmart.inventory import service as inventory
from selfmart.models import Category, Product, ProductBarcode, ProductTag, Store, StoreProduct

_SORT_COLUMNS: dict[str, Any] = {
    "id": Product.id,
    "name": Product.name,
    "brand": Product.brand,
    "price_fen": Product.price_fen,
    "created_at": Product.created_at,
    "updated_at": Product.updated_at,
}


def detail_options() -> list[LoaderOption]:
    """What a ProductRead needs, loaded up front (relationships are lazy="raise")."""
    return [
        selectinload(Product.barcodes),
        selectinload(Product.tags),
        selectinload(Product.images),
    ]


def text_condition(q: str) -> ColumnElement[bool]:
    """Name, brand or barcode contains `q`, or its pinyin (full or initials) does."""
    q = q.strip()
    conds: list[ColumnElement[bool]] = [
        Product.name.icontains(q, autoescape=True),
        Product.brand.icontains(q, autoescape=True),
        exists().where(
            ProductBarcode.product_id == Product.id,
            ProductBarcode.code.startswith(q.upper(), autoescape=True),
        ),
    ]
    key = normalise_query(q)
    if key:
        conds.append(Product.pinyin_initials.contains(key, autoescape=True))
        if len(key) >= 2:
            conds.append(Product.pinyin_full.contains(key, autoescape=True))
    return or_(*conds)


async def category_path(session: AsyncSession, category_id: int) -> str | None:
    path: str | None = await session.scalar(select(Category.path).where(Category.id == category_id))
    return path


async def subtree_ids(session: AsyncSession, category_ids: Sequence[int]) -> list[int]:
    """The given categories and every category below them."""
    if not category_ids:
        return []
    paths = (
        await session.scalars(select(Category.path).where(Category.id.in_(category_ids)))
    ).all()
    if not paths:
        return []
    rows = await session.scalars(
        select(Category.id).where(or_(*(Category.path.startswith(p) for p in paths)))
    )
    return list(rows.all())


def visible_store_ids(store_ids: frozenset[int] | None) -> ColumnElement[bool]:
    if store_ids is None:
        return Store.id.is_not(None)
    return Store.id.in_(store_ids) if store_ids else false()


async def product_filter_conditions(
    session: AsyncSession, f: ProductFilter, *, store_scope: frozenset[int] | None
) -> list[ColumnElement[bool]]:
    """WHERE conditions for a filter. The caller has checked the store is visible;
    `store_scope` (the actor's stores, None for all) bounds a stock state without a store."""
    conds: list[ColumnElement[bool]] = []
    if f.q:
        conds.append(text_condition(f.q))
    if f.category_id is not None:
        path = await category_path(session, f.category_id)
        if path is None:
            conds.append(false())
        else:
            conds.append(
                Product.category_id.in_(select(Category.id).where(Category.path.startswith(path)))
            )
    if f.tag_id is not None:
        conds.append(
            exists().where(ProductTag.product_id == Product.id, ProductTag.tag_id == f.tag_id)
        )
    if f.status is not None:
        conds.append(Product.status == f.status)
    if f.brand:
        conds.append(Product.brand == f.brand)
    if f.store_id is not None:
        conds.append(
            exists().where(
                and_(
                    StoreProduct.product_id == Product.id,
                    StoreProduct.store_id == f.store_id,
                    StoreProduct.is_listed.is_(True),
                )
            )
        )
    if f.stock_state is not None:
        conds.append(
            inventory.stock_state_condition(
                f.stock_state,
                product_id=Product.id,
                chain_threshold=Product.low_stock_threshold,
                store_ids=store_scope if f.store_id is None else (f.store_id,),
            )
        )
    if f.ids is not None:
        conds.append(Product.id.in_(f.ids))
    return conds


def apply_sort(stmt: Select[Any], sort: str) -> Select[Any]:
    desc = sort.startswith("-")
    column = _SORT_COLUMNS[sort.lstrip("-")]
    return stmt.order_by(column.desc() if desc else column.asc(), Product.id.asc())


async def product_search(
    session: AsyncSession, f: ProductFilter, sort: str, *, store_scope: frozenset[int] | None
) -> Select[Any]:
    conds = await product_filter_conditions(session, f, store_scope=store_scope)
    return apply_sort(select(Product).where(*conds), sort)


async def count_products_by_category(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(
        select(Product.category_id, func.count())
        .where(Product.category_id.is_not(None))
        .group_by(Product.category_id)
    )
    return {int(cid): int(n) for cid, n in rows.all() if cid is not None}
