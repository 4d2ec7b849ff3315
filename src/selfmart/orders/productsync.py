"""What a terminal needs to sell: its store's products with prices and barcodes, as a full
download or as the changes since a version it already holds.

The version is the latest change time (microseconds since the epoch) of anything in the list:
a product, its store listing or a barcode. A product taken off sale or unlisted since the
version comes back in `removed`.

A change time is taken when the row is written, not when its transaction commits: a bulk price
edit stamped 10:00:00.1 may commit after a terminal synced at 10:00:00.3 and was told "version
10:00:00.2" by another change, and "since 10:00:00.2" would never bring it. So the version
given out is never later than `LATE_COMMIT_WINDOW` ago: everything stamped before that has
committed, and changes of the last moments come again on the next sync (the terminal applies
items as upserts and removals as deletes, so a repeat is harmless).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import Product, ProductBarcode, StoreProduct

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_MICRO = timedelta(microseconds=1)

#: The version given out is at most this long ago: longer than any write transaction of the
#: catalog (requests and import chunks take seconds).
LATE_COMMIT_WINDOW = timedelta(minutes=2)


#: The last microsecond a datetime can hold (9999-12-31): a larger version is no time at all.
MAX_VERSION = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _MICRO


def to_version(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def from_version(version: int) -> datetime:
    return _EPOCH + version * _MICRO


async def sync(session: AsyncSession, *, store_id: int, since: int | None) -> dict[str, Any]:
    barcode_changed = (
        select(ProductBarcode.product_id)
        .where(ProductBarcode.created_at > from_version(since))
        .scalar_subquery()
        if since is not None
        else None
    )
    stmt = (
        select(
            Product.id,
            Product.name,
            Product.spec,
            Product.unit,
            Product.price_fen,
            Product.member_price_fen,
            Product.status,
            Product.updated_at,
            StoreProduct.store_price_fen,
            StoreProduct.is_listed,
            StoreProduct.updated_at.label("listed_at"),
        )
        .join(
            StoreProduct,
            and_(StoreProduct.product_id == Product.id, StoreProduct.store_id == store_id),
        )
        .order_by(Product.id)
    )
    if since is not None:
        moment = from_version(since)
        stmt = stmt.where(
            or_(
                Product.updated_at > moment,
                StoreProduct.updated_at > moment,
                Product.id.in_(barcode_changed),  # type: ignore[arg-type]
            )
        )
    rows = (await session.execute(stmt)).all()
    live = [r for r in rows if r.is_listed and r.status == "on_sale"]
    codes: dict[int, list[str]] = {}
    newest = from_version(since) if since is not None else _EPOCH
    if live:
        for pid, code, created in (
            await session.execute(
                select(ProductBarcode.product_id, ProductBarcode.code, ProductBarcode.created_at)
                .where(ProductBarcode.product_id.in_([r.id for r in live]))
                .order_by(ProductBarcode.id)
            )
        ).all():
            codes.setdefault(pid, []).append(code)
            newest = max(newest, created)
    for r in rows:
        newest = max(newest, r.updated_at, r.listed_at)
    # Never later than the window ago (see above); never earlier than the version given.
    settled = utcnow() - LATE_COMMIT_WINDOW
    if since is not None:
        settled = max(settled, from_version(since))
    return {
        "version": to_version(min(newest, settled)),
        "full": since is None,
        "items": [
            {
                "product_id": r.id,
                "name": r.name,
                "spec": r.spec,
                "unit": r.unit,
                "price_fen": r.store_price_fen if r.store_price_fen is not None else r.price_fen,
                "member_price_fen": r.member_price_fen,
                "barcodes": codes.get(r.id, []),
            }
            for r in live
        ],
        "removed": []
        if since is None
        else [r.id for r in rows if not (r.is_listed and r.status == "on_sale")],
    }
