"""Which stores sell a product: the stores a new product is listed in (the ones its creator
chooses, else all of theirs), listing and unlisting many products at once, and keeping the
low-stock alerts in step when a listing or a threshold changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog import repository as repo
from selfmart.errors import ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import alerts
from selfmart.kit.time import utcnow
from selfmart.models import Store, StoreProduct

_listings = cast(Table, StoreProduct.__table__)
#: Products per statement (IN lists and multi-row inserts stay well below SQLite's limits).
CHUNK = 500


async def target_stores(
    session: AsyncSession, actor: Actor, requested: Sequence[int] | None, *, field: str
) -> list[int]:
    """The stores to list new products in: those requested (each one the actor may see, else a
    422 naming `field[i]`), or with None every active store the actor works in."""
    visible = repo.visible_store_ids(actor.store_ids)
    if requested is None:
        stmt = select(Store.id).where(visible, Store.status == "active").order_by(Store.id)
        return list((await session.scalars(stmt)).all())
    wanted = list(dict.fromkeys(requested))
    found = set(
        (await session.scalars(select(Store.id).where(visible, Store.id.in_(wanted)))).all()
    )
    missing = [
        ErrorDetail(field=f"{field}[{i}]", reason="store_not_found", message=f"No store {sid}")
        for i, sid in enumerate(requested)
        if sid not in found
    ]
    if missing:
        raise ValidationFailed("Some stores do not exist or are not yours", details=missing)
    return sorted(wanted)


async def set_listed(
    session: AsyncSession,
    product_ids: Sequence[int],
    store_ids: Sequence[int],
    *,
    listed: bool = True,
) -> None:
    """List (or unlist) products in stores, creating the listing rows a product lacks, then
    evaluate their low-stock alerts there. The caller records the audit entries."""
    if not product_ids or not store_ids:
        return
    now = utcnow()
    stores = sorted(set(store_ids))
    ids = sorted(set(product_ids))
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        existing = await session.execute(
            select(_listings.c.store_id, _listings.c.product_id).where(
                _listings.c.store_id.in_(stores), _listings.c.product_id.in_(chunk)
            )
        )
        have = {(int(s), int(p)) for s, p in existing}
        await session.execute(
            update(_listings)
            .where(
                _listings.c.store_id.in_(stores),
                _listings.c.product_id.in_(chunk),
                _listings.c.is_listed != listed,
            )
            .values(is_listed=listed, updated_at=now)
        )
        if listed:
            new = [
                {
                    "store_id": s,
                    "product_id": p,
                    "is_listed": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for p in chunk
                for s in stores
                if (s, p) not in have
            ]
            if new:
                await session.execute(insert(_listings), new)
        await alerts.reevaluate(session, chunk, store_ids=stores, now=now)


async def thresholds_changed(
    session: AsyncSession, product_ids: Sequence[int], *, store_ids: Sequence[int] | None = None
) -> None:
    """A chain-wide (or a store's) threshold changed: re-evaluate the alerts it affects."""
    ids = sorted(set(product_ids))
    for i in range(0, len(ids), CHUNK):
        await alerts.reevaluate(session, ids[i : i + CHUNK], store_ids=store_ids)
