"""What an audit entry's entity is called (a product's name, an order's number), so the log
reads "商品 可口可乐 330ml" rather than "product #246". The label is stored with the entry when
it is written (it survives the entity's deletion and lets a search find it by name); entries
written before labels existed, and bulk entries written without one, are named when read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from selfmart.models import (
    AlertRoute,
    Category,
    Order,
    PaymentAccount,
    Product,
    PurchaseOrder,
    Role,
    Stocktake,
    StockTransfer,
    Store,
    Supplier,
    Tag,
    Terminal,
    User,
)

#: Longest label stored (the column's size).
MAX_LABEL = 200


@dataclass(frozen=True, slots=True)
class _Source:
    """Where an entity type's label lives: its table's id and label columns, and the snapshot
    fields (in an entry's before/after) that carry the same label."""

    id: InstrumentedAttribute[int]
    label: InstrumentedAttribute[str]
    fields: tuple[str, ...]


SOURCES: dict[str, _Source] = {
    "product": _Source(Product.id, Product.name, ("name",)),
    "category": _Source(Category.id, Category.name, ("name",)),
    "tag": _Source(Tag.id, Tag.name, ("name",)),
    "order": _Source(Order.id, Order.order_no, ("order_no",)),
    "purchase_order": _Source(PurchaseOrder.id, PurchaseOrder.number, ("number",)),
    "stock_transfer": _Source(StockTransfer.id, StockTransfer.number, ("number",)),
    "stocktake": _Source(Stocktake.id, Stocktake.number, ("number",)),
    "supplier": _Source(Supplier.id, Supplier.name, ("name",)),
    "store": _Source(Store.id, Store.name, ("name",)),
    "terminal": _Source(Terminal.id, Terminal.code, ("code",)),
    "user": _Source(User.id, User.display_name, ("display_name", "username")),
    "role": _Source(Role.id, Role.name, ("name",)),
    "stock_alert_route": _Source(AlertRoute.id, AlertRoute.name, ("name",)),
    "payment_account": _Source(PaymentAccount.id, PaymentAccount.name, ("name",)),
    # a store's stock of one product ("store_id:product_id") is named after the product
    "stock": _Source(Product.id, Product.name, ()),
}


def _key(entity_type: str, entity_id: str | None) -> int | None:
    """The id to look the label up by (a stock entry's is its product's)."""
    if entity_id is None:
        return None
    if entity_type == "stock":
        entity_id = entity_id.rpartition(":")[2]
    try:
        return int(entity_id)
    except ValueError:
        return None


def _clip(text: str) -> str:
    return text[:MAX_LABEL]


def from_snapshot(
    entity_type: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> str | None:
    """The label an entry's own before/after already carries (the new name wins)."""
    source = SOURCES.get(entity_type)
    if source is None:
        return None
    for snap in (after, before):
        for field in source.fields:
            value = (snap or {}).get(field)
            if isinstance(value, str) and value.strip():
                return _clip(value.strip())
    return None


async def look_up(session: AsyncSession, entity_type: str, entity_id: object | None) -> str | None:
    """The entity's label as the transaction sees it now, without flushing what is pending."""
    source = SOURCES.get(entity_type)
    key = _key(entity_type, None if entity_id is None else str(entity_id))
    if source is None or key is None:
        return None
    with session.no_autoflush:
        value = await session.scalar(select(source.label).where(source.id == key))
    return _clip(value) if value else None


async def resolve(
    session: AsyncSession, entries: Iterable[tuple[str, str | None]]
) -> dict[tuple[str, str], str]:
    """Labels for (entity_type, entity_id) pairs, one query per entity type."""
    wanted: dict[str, dict[int, list[str]]] = {}
    for entity_type, entity_id in entries:
        key = _key(entity_type, entity_id)
        if entity_type in SOURCES and key is not None and entity_id is not None:
            wanted.setdefault(entity_type, {}).setdefault(key, []).append(entity_id)
    out: dict[tuple[str, str], str] = {}
    for entity_type, keys in wanted.items():
        source = SOURCES[entity_type]
        cond: ColumnElement[bool] = source.id.in_(sorted(keys))
        for key, label in (
            await session.execute(select(source.id, source.label).where(cond))
        ).all():
            if label:
                for entity_id in keys[key]:
                    out[(entity_type, entity_id)] = _clip(label)
    return out
