"""Bulk edits over a selection of products: preview every change, then apply exactly that.

The preview's token is a hash of the selection, the action and every computed change. Apply
recomputes the changes and refuses (409) when the token differs — so what is applied is what
was previewed, even if someone edited a product in between. One audit entry per product.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.catalog import listing as store_listing
from selfmart.catalog import repository as repo
from selfmart.catalog import service as catalog
from selfmart.catalog.exceptions import PreviewStale, invalid
from selfmart.catalog.labels import first_barcode
from selfmart.catalog.schemas import (
    AddTags,
    AdjustPrice,
    BulkAction,
    BulkApplyRequest,
    BulkChange,
    BulkPreview,
    BulkPreviewRequest,
    BulkResult,
    MoveCategory,
    Selection,
    SetListing,
    SetPrice,
    SetStatus,
    SetThreshold,
)
from selfmart.errors import ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.money import percent_of
from selfmart.kit.time import utcnow
from selfmart.models import Category, Product, ProductTag, StoreProduct, Tag

MAX_SELECTION = 10_000


async def selected_ids(session: AsyncSession, selection: Selection, *, actor: Actor) -> list[int]:
    if selection.ids is not None:
        ids = sorted(set(selection.ids))
        found = set((await session.scalars(select(Product.id).where(Product.id.in_(ids)))).all())
        missing = [i for i in ids if i not in found]
        if missing:
            raise invalid("selection.ids", "not_found", f"No such products: {missing[:20]}")
        return ids
    assert selection.filter is not None
    if selection.filter.store_id is not None:
        await catalog.visible_store(session, actor, selection.filter.store_id)
    conds = await repo.product_filter_conditions(
        session, selection.filter, store_scope=actor.store_ids
    )
    count = await session.scalar(select(func.count(Product.id)).where(*conds))
    if (count or 0) > MAX_SELECTION:
        raise invalid(
            "selection.filter",
            "too_many",
            f"The filter selects {count} products; narrow it to {MAX_SELECTION:,} or fewer",
        )
    return list(
        (await session.scalars(select(Product.id).where(*conds).order_by(Product.id))).all()
    )


def _adjusted(old: int, action: AdjustPrice) -> int:
    if action.by_fen is not None:
        return old + action.by_fen
    assert action.percent is not None
    return percent_of(old, Decimal(100) + action.percent)


async def compute_changes(
    session: AsyncSession, ids: list[int], action: BulkAction, *, actor: Actor
) -> list[BulkChange]:
    """Every change the action would make; products it would not change are left out."""
    if not ids:
        return []
    products = {
        p.id: p
        for p in (
            await session.execute(
                select(
                    Product.id,
                    Product.name,
                    Product.spec,
                    first_barcode().label("barcode"),
                    Product.price_fen,
                    Product.member_price_fen,
                    Product.cost_fen,
                    Product.status,
                    Product.low_stock_threshold,
                    Product.category_id,
                ).where(Product.id.in_(ids))
            )
        ).all()
    }
    changes: list[BulkChange] = []
    store_id = getattr(action, "store_id", None)
    listings: dict[int, Any] = {}
    if store_id is not None:
        await catalog.visible_store(session, actor, store_id)
        listings = {
            sp.product_id: sp
            for sp in (
                await session.execute(
                    select(
                        StoreProduct.product_id,
                        StoreProduct.store_price_fen,
                        StoreProduct.low_stock_threshold,
                    ).where(StoreProduct.store_id == store_id, StoreProduct.product_id.in_(ids))
                )
            ).all()
        }

    def change(pid: int, field: str, before: Any, after: Any, store: int | None = None) -> None:
        if before != after:
            changes.append(
                BulkChange(
                    product_id=pid,
                    product_name=products[pid].name,
                    spec=products[pid].spec,
                    barcode=products[pid].barcode,
                    field=field,
                    store_id=store,
                    before=before,
                    after=after,
                )
            )

    if isinstance(action, SetPrice | AdjustPrice):
        if store_id is not None and action.field != "price_fen":
            raise invalid("action.field", "store_price_only", "Stores override price_fen only")
        negative: list[ErrorDetail] = []
        for pid in ids:
            p = products[pid]
            if store_id is not None:
                if pid not in listings:
                    continue  # not listed in the store: nothing to price there
                current = listings[pid].store_price_fen
                base = current if current is not None else p.price_fen
                new = action.amount_fen if isinstance(action, SetPrice) else _adjusted(base, action)
                field, before = "store_price_fen", current
            else:
                before = getattr(p, action.field)
                if before is None and isinstance(action, AdjustPrice):
                    continue  # no member price to adjust
                new = (
                    action.amount_fen if isinstance(action, SetPrice) else _adjusted(before, action)
                )
                field = action.field
            if new < 0:
                negative.append(
                    ErrorDetail(
                        field=f"products[{pid}]",
                        reason="negative_price",
                        message=f"{p.name} would cost {new} fen",
                    )
                )
                continue
            change(pid, field, before, new, store_id)
        if negative:
            raise ValidationFailed("The adjustment makes some prices negative", details=negative)
    elif isinstance(action, SetStatus):
        for pid in ids:
            change(pid, "status", products[pid].status, action.status)
    elif isinstance(action, SetThreshold):
        if store_id is None:
            if action.low_stock_threshold is None:
                raise invalid(
                    "action.low_stock_threshold", "required", "The chain-wide threshold is required"
                )
            for pid in ids:
                change(
                    pid,
                    "low_stock_threshold",
                    products[pid].low_stock_threshold,
                    action.low_stock_threshold,
                )
        else:
            for pid in ids:
                if pid in listings:
                    change(
                        pid,
                        "low_stock_threshold",
                        listings[pid].low_stock_threshold,
                        action.low_stock_threshold,
                        store_id,
                    )
    elif isinstance(action, MoveCategory):
        if (
            action.category_id is not None
            and await session.get(Category, action.category_id) is None
        ):
            raise invalid("action.category_id", "category_not_found", "No such category")
        for pid in ids:
            change(pid, "category_id", products[pid].category_id, action.category_id)
    elif isinstance(action, SetListing):
        stores = await store_listing.target_stores(
            session, actor, action.store_ids, field="action.store_ids"
        )
        listed = {
            (sid, pid)
            for sid, pid in (
                await session.execute(
                    select(StoreProduct.store_id, StoreProduct.product_id).where(
                        StoreProduct.store_id.in_(stores),
                        StoreProduct.product_id.in_(ids),
                        StoreProduct.is_listed.is_(True),
                    )
                )
            ).all()
        }
        for pid in ids:
            for sid in stores:
                change(pid, "is_listed", (sid, pid) in listed, action.listed, sid)
    elif isinstance(action, AddTags):
        tags = {
            t.id: t.name
            for t in (
                await session.execute(select(Tag.id, Tag.name).where(Tag.id.in_(action.tag_ids)))
            ).all()
        }
        missing = sorted(set(action.tag_ids) - set(tags))
        if missing:
            raise invalid("action.tag_ids", "tag_not_found", f"No such tags: {missing}")
        have: dict[int, set[int]] = {}
        for pid, tid in (
            await session.execute(
                select(ProductTag.product_id, ProductTag.tag_id).where(
                    ProductTag.product_id.in_(ids)
                )
            )
        ).all():
            have.setdefault(pid, set()).add(tid)
        for pid in ids:
            before_ids = have.get(pid, set())
            after_ids = before_ids | set(tags)
            if after_ids != before_ids:
                change(pid, "tag_ids", sorted(before_ids), sorted(after_ids))
    return changes


def token_for(request: BulkPreviewRequest, ids: list[int], changes: list[BulkChange]) -> str:
    doc = {
        "selection": ids,
        "action": request.action.model_dump(mode="json"),
        "changes": [c.model_dump(mode="json") for c in changes],
    }
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


async def preview(
    session: AsyncSession, request: BulkPreviewRequest, *, actor: Actor
) -> BulkPreview:
    ids = await selected_ids(session, request.selection, actor=actor)
    changes = await compute_changes(session, ids, request.action, actor=actor)
    return BulkPreview(
        selected=len(ids),
        changed=len(changes),
        changes=changes,
        token=token_for(request, ids, changes),
    )


async def apply(session: AsyncSession, request: BulkApplyRequest, *, actor: Actor) -> BulkResult:
    ids = await selected_ids(session, request.selection, actor=actor)
    changes = await compute_changes(session, ids, request.action, actor=actor)
    if token_for(request, ids, changes) != request.token:
        raise PreviewStale(field="token")
    now = utcnow()
    product_rows: list[dict[str, Any]] = []
    listing_changes: dict[int, list[int]] = {}
    for c in changes:
        if c.field == "is_listed":
            assert c.store_id is not None
            listing_changes.setdefault(c.store_id, []).append(c.product_id)
        elif c.store_id is not None:
            await session.execute(
                update(StoreProduct)
                .where(StoreProduct.store_id == c.store_id, StoreProduct.product_id == c.product_id)
                .values({c.field: c.after, "updated_at": now})
            )
        elif c.field == "tag_ids":
            new = sorted(set(c.after) - set(c.before))
            await session.execute(
                insert(ProductTag), [{"product_id": c.product_id, "tag_id": t} for t in new]
            )
            product_rows.append({"id": c.product_id, "updated_at": now})
        else:
            product_rows.append({"id": c.product_id, c.field: c.after, "updated_at": now})
        await audit.record(
            session,
            actor,
            f"product.bulk_{request.action.op}",
            "product",
            c.product_id,
            store_id=c.store_id,
            before={c.field: c.before},
            after={c.field: c.after},
        )
    if product_rows:
        await session.execute(update(Product), product_rows)
    if isinstance(request.action, SetListing):
        for store_id, pids in sorted(listing_changes.items()):
            await store_listing.set_listed(session, pids, [store_id], listed=request.action.listed)
    elif isinstance(request.action, SetThreshold) and changes:
        store = request.action.store_id
        await store_listing.thresholds_changed(
            session,
            [c.product_id for c in changes],
            store_ids=None if store is None else [store],
        )
    if not changes:
        # Nothing to change is still a confirmed operation: leave a trace of it.
        await audit.record(
            session, actor, f"product.bulk_{request.action.op}", "product", None, note="no changes"
        )
    await session.flush()
    return BulkResult(changed=len(changes), changes=changes)
