"""Read side of inventory for the console: stock per store, the ledger, the balance series.

Every query is scoped to a store the actor may see (another store is a 404, checked in the
query helpers before anything is read). Product names come from a read-only join on the
catalogue's tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.catalog.labels import first_barcode
from selfmart.errors import NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory.alerts import stock_state
from selfmart.kit.pagination import PageParams
from selfmart.models import (
    Category,
    Product,
    ProductBarcode,
    StockLevel,
    StockMovement,
    Store,
    StoreProduct,
)

STOCK_STATES = ("ok", "low", "out")
SERIES_BUCKETS = ("none", "hour", "day")
#: The longest range a balance chart may cover.
SERIES_MAX_DAYS = 366


async def visible_store(session: AsyncSession, store_id: int, actor: Actor) -> Store:
    """The store, if it exists and the actor may see it; otherwise a 404."""
    stmt = select(Store).where(Store.id == store_id)
    if actor.store_ids is not None:
        stmt = stmt.where(Store.id.in_(actor.store_ids))
    store = await session.scalar(stmt)
    if store is None:
        raise NotFound("No such store", field="store_id")
    return store


@dataclass(frozen=True, slots=True)
class StockFilter:
    q: str | None = None
    state: str | None = None
    category_id: int | None = None
    product_ids: Sequence[int] | None = None
    sort: str = "name"


STOCK_SORTS = ("name", "-name", "quantity", "-quantity", "updated_at", "-updated_at")


async def _category_path(session: AsyncSession, category_id: int) -> str:
    path = await session.scalar(select(Category.path).where(Category.id == category_id))
    if path is None:
        raise NotFound("No such category", field="category_id")
    return path


async def stock_query(session: AsyncSession, store_id: int, flt: StockFilter) -> Select[Any]:
    """Products stocked in or listed by the store, with balance, threshold and state."""
    level = StockLevel.__table__.alias("sl")
    listing = StoreProduct.__table__.alias("sp")
    quantity = func.coalesce(level.c.quantity, 0)
    threshold = func.coalesce(listing.c.low_stock_threshold, Product.low_stock_threshold, 0)
    stmt = (
        select(
            Product.id.label("product_id"),
            Product.name.label("product_name"),
            Product.brand,
            Product.spec,
            Product.unit,
            Product.category_id,
            first_barcode().label("barcode"),
            quantity.label("quantity"),
            threshold.label("threshold"),
            level.c.updated_at.label("updated_at"),
        )
        .select_from(Product)
        .outerjoin(level, and_(level.c.product_id == Product.id, level.c.store_id == store_id))
        .outerjoin(
            listing, and_(listing.c.product_id == Product.id, listing.c.store_id == store_id)
        )
        .where(or_(level.c.id.is_not(None), listing.c.id.is_not(None)))
    )
    if flt.q:
        like = f"%{flt.q.strip().lower()}%"
        barcode_hit = (
            select(ProductBarcode.id)
            .where(ProductBarcode.product_id == Product.id, ProductBarcode.code == flt.q.strip())
            .exists()
        )
        stmt = stmt.where(
            or_(
                func.lower(Product.name).like(like),
                func.lower(Product.brand).like(like),
                Product.pinyin_initials.like(like),
                Product.pinyin_full.like(like),
                barcode_hit,
            )
        )
    if flt.category_id is not None:
        path = await _category_path(session, flt.category_id)
        sub = select(Category.id).where(Category.path.like(f"{path}%"))
        stmt = stmt.where(Product.category_id.in_(sub))
    if flt.product_ids is not None:
        stmt = stmt.where(Product.id.in_(list(flt.product_ids)))
    if flt.state is not None:
        if flt.state not in STOCK_STATES:
            raise ValidationFailed("state must be ok, low or out", field="state")
        if flt.state == "out":
            stmt = stmt.where(quantity <= 0)
        elif flt.state == "low":
            stmt = stmt.where(quantity > 0, quantity <= threshold)
        else:
            stmt = stmt.where(quantity > 0, quantity > threshold)
    if flt.sort not in STOCK_SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(STOCK_SORTS)}", field="sort")
    key = {"name": Product.name, "quantity": quantity, "updated_at": level.c.updated_at}[
        flt.sort.lstrip("-")
    ]
    order = key.desc() if flt.sort.startswith("-") else key.asc()
    return stmt.order_by(order, Product.id)


def _stock_row(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    data["state"] = stock_state(int(data["quantity"]), int(data["threshold"]))
    return data


async def list_stock(
    session: AsyncSession, store_id: int, flt: StockFilter, params: PageParams, *, actor: Actor
) -> tuple[list[dict[str, Any]], int]:
    await visible_store(session, store_id, actor)
    stmt = await stock_query(session, store_id, flt)
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.execute(stmt.limit(params.size).offset(params.offset))).all()
    return [_stock_row(r) for r in rows], int(total or 0)


async def iter_stock(
    session: AsyncSession, store_id: int, flt: StockFilter, *, actor: Actor
) -> AsyncIterator[dict[str, Any]]:
    """Every matching row, for an export (streamed from the database)."""
    await visible_store(session, store_id, actor)
    stmt = await stock_query(session, store_id, flt)
    result = await session.stream(stmt.execution_options(yield_per=500))
    async for row in result:
        yield _stock_row(row)


async def stock_of(
    session: AsyncSession, store_id: int, product_id: int, *, actor: Actor
) -> dict[str, Any]:
    await visible_store(session, store_id, actor)
    stmt = await stock_query(session, store_id, StockFilter(product_ids=[product_id]))
    row = (await session.execute(stmt)).first()
    if row is None:
        # A product the store neither stocks nor lists: zero on hand, if the product exists.
        product = await session.get(Product, product_id)
        if product is None:
            raise NotFound("No such product", field="product_id")
        return {
            "product_id": product.id,
            "product_name": product.name,
            "brand": product.brand,
            "spec": product.spec,
            "unit": product.unit,
            "category_id": product.category_id,
            "barcode": None,
            "quantity": 0,
            "threshold": product.low_stock_threshold,
            "updated_at": None,
            "state": "out",
        }
    return _stock_row(row)


# --- the ledger ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MovementFilter:
    product_id: int | None = None
    kinds: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    document_type: str | None = None
    document_id: str | None = None


def movement_query(store_id: int, flt: MovementFilter) -> Select[StockMovement, str, str, str]:
    stmt = (
        select(
            StockMovement,
            Product.name.label("product_name"),
            Product.spec,
            first_barcode().label("barcode"),
        )
        .join(Product, Product.id == StockMovement.product_id)
        .where(StockMovement.store_id == store_id)
    )
    if flt.product_id is not None:
        stmt = stmt.where(StockMovement.product_id == flt.product_id)
    if flt.kinds:
        stmt = stmt.where(StockMovement.kind.in_(list(flt.kinds)))
    if flt.since is not None:
        stmt = stmt.where(StockMovement.occurred_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(StockMovement.occurred_at < flt.until)
    if flt.document_type is not None:
        stmt = stmt.where(StockMovement.document_type == flt.document_type)
    if flt.document_id is not None:
        stmt = stmt.where(StockMovement.document_id == flt.document_id)
    return stmt.order_by(StockMovement.occurred_at.desc(), StockMovement.id.desc())


def _movement_row(row: Any) -> dict[str, Any]:
    m: StockMovement = row[0]
    return {
        "id": m.id,
        "store_id": m.store_id,
        "product_id": m.product_id,
        "product_name": row[1],
        "spec": row[2],
        "barcode": row[3],
        "kind": m.kind,
        "quantity": m.quantity,
        "balance_after": m.balance_after,
        "document_type": m.document_type,
        "document_id": m.document_id,
        "reason": m.reason,
        "batch_id": m.batch_id,
        "actor_type": m.actor_type,
        "actor_id": m.actor_id,
        "actor_name": m.actor_name,
        "occurred_at": m.occurred_at,
    }


async def list_movements(
    session: AsyncSession,
    store_id: int,
    flt: MovementFilter,
    params: PageParams,
    *,
    actor: Actor,
) -> tuple[list[dict[str, Any]], int]:
    await visible_store(session, store_id, actor)
    stmt = movement_query(store_id, flt)
    total = await session.scalar(
        select(func.count()).select_from(
            stmt.with_only_columns(StockMovement.id).order_by(None).subquery()
        )
    )
    rows = (await session.execute(stmt.limit(params.size).offset(params.offset))).all()
    return [_movement_row(r) for r in rows], int(total or 0)


async def iter_movements(
    session: AsyncSession, store_id: int, flt: MovementFilter, *, actor: Actor
) -> AsyncIterator[dict[str, Any]]:
    await visible_store(session, store_id, actor)
    result = await session.stream(movement_query(store_id, flt).execution_options(yield_per=500))
    async for row in result:
        yield _movement_row(row)


# --- balance over time ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    at: datetime
    balance: int
    #: net change within the bucket (or the movement itself when not bucketed)
    change: int
    #: units that came in and went out within the bucket: sums of movements, never of the net
    #: change (+30 then -26 in one hour is 30 in and 26 out, not 4 in)
    in_qty: int = 0
    out_qty: int = 0


def _bucket_start(at: datetime, bucket: str, zone: ZoneInfo) -> datetime:
    local = at.astimezone(zone)
    if bucket == "hour":
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local


async def balance_series(
    session: AsyncSession,
    store_id: int,
    product_id: int,
    *,
    since: datetime,
    until: datetime,
    bucket: str,
    actor: Actor,
) -> tuple[int, list[SeriesPoint]]:
    """The opening balance at `since`, then the balance after each movement (or at the end of
    each hour/day in the store's zone) up to `until`."""
    store = await visible_store(session, store_id, actor)
    if bucket not in SERIES_BUCKETS:
        raise ValidationFailed("bucket must be none, hour or day", field="bucket")
    if until <= since:
        raise ValidationFailed("until must be after since", field="until")
    if until - since > timedelta(days=SERIES_MAX_DAYS):
        raise ValidationFailed(f"at most {SERIES_MAX_DAYS} days per chart", field="since")
    where = (StockMovement.store_id == store_id, StockMovement.product_id == product_id)
    opening = await session.scalar(
        select(StockMovement.balance_after)
        .where(*where, StockMovement.occurred_at < since)
        .order_by(StockMovement.occurred_at.desc(), StockMovement.id.desc())
        .limit(1)
    )
    rows = await session.stream(
        select(StockMovement.occurred_at, StockMovement.balance_after, StockMovement.quantity)
        .where(*where, StockMovement.occurred_at >= since, StockMovement.occurred_at < until)
        .order_by(StockMovement.occurred_at, StockMovement.id)
        .execution_options(yield_per=1000)
    )
    points: list[SeriesPoint] = []
    zone = ZoneInfo(store.timezone)
    async for at, balance, qty in rows:
        q = int(qty)
        came, went = max(q, 0), max(-q, 0)
        if bucket == "none":
            points.append(SeriesPoint(at, int(balance), q, came, went))
            continue
        start = _bucket_start(at, bucket, zone)
        if points and points[-1].at == start:
            last = points[-1]
            points[-1] = SeriesPoint(
                start, int(balance), last.change + q, last.in_qty + came, last.out_qty + went
            )
        else:
            points.append(SeriesPoint(start, int(balance), q, came, went))
    return int(opening or 0), points


# --- read helpers for settlement -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    """Movements of these stores in [since, until) (a period of dates in their zone)."""

    store_ids: Sequence[int]
    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class MovementSum:
    product_id: int
    kind: str
    document_type: str | None
    document_id: str | None
    #: signed, as the ledger holds it
    quantity: int
    #: booked after `late_after_id` for a time before the window
    late: bool


async def last_movement_id(session: AsyncSession) -> int:
    """The highest ledger id so far (0 for an empty ledger)."""
    return int(await session.scalar(select(func.max(StockMovement.id))) or 0)


async def movement_sums(
    session: AsyncSession,
    *,
    kinds: Sequence[str],
    windows: Sequence[Window],
    up_to_id: int,
    late_since: Sequence[Window] = (),
    late_after_id: int | None = None,
    product_ids: Sequence[int] | None = None,
    document_type: str | None = None,
    document_ids: Sequence[str] | None = None,
) -> list[MovementSum]:
    """Signed quantities per product, kind and document of the movements in `windows` with
    ids up to `up_to_id`; with `late_after_id`, also (marked late) those in `late_since`
    booked after that id: what a settlement made before they were booked did not see."""
    if not windows or (product_ids is not None and not product_ids):
        return []

    def within(ws: Sequence[Window]) -> ColumnElement[bool]:
        return or_(
            *(
                and_(
                    StockMovement.store_id.in_(list(w.store_ids)),
                    StockMovement.occurred_at >= w.since,
                    StockMovement.occurred_at < w.until,
                )
                for w in ws
            )
        )

    async def sums(where: ColumnElement[bool], late: bool) -> list[MovementSum]:
        stmt = select(
            StockMovement.product_id,
            StockMovement.kind,
            StockMovement.document_type,
            StockMovement.document_id,
            func.sum(StockMovement.quantity),
        ).where(StockMovement.kind.in_(list(kinds)), StockMovement.id <= up_to_id, where)
        if product_ids is not None:
            stmt = stmt.where(StockMovement.product_id.in_(list(product_ids)))
        if document_type is not None:
            stmt = stmt.where(StockMovement.document_type == document_type)
        if document_ids is not None:
            stmt = stmt.where(StockMovement.document_id.in_(list(document_ids)))
        stmt = stmt.group_by(
            StockMovement.product_id,
            StockMovement.kind,
            StockMovement.document_type,
            StockMovement.document_id,
        )
        return [
            MovementSum(int(pid), str(kind), dtype, did, quantity=int(q or 0), late=late)
            for pid, kind, dtype, did, q in await session.execute(stmt)
        ]

    found = await sums(within(windows), False)
    if late_after_id is not None and late_since:
        found += await sums(and_(within(late_since), StockMovement.id > late_after_id), True)
    return found


#: Movement kinds by what they mean for stock analysis (adjustments, of either sign and for any
#: reason, are in none of them: they move the balance only).
RECEIVED_KINDS = ("purchase_receipt", "transfer_in")
SOLD_KINDS = ("sale", "customer_return")
SHRINK_KINDS = ("stocktake_loss", "write_off", "stocktake_gain")


@dataclass(frozen=True)
class LedgerTotals:
    """One product's ledger in one store around a window: the balance when it starts and ends,
    and the signed quantities moved in it by what they mean."""

    store_id: int
    product_id: int
    opening: int
    closing: int
    received: int
    sold: int
    shrunk: int


async def ledger_totals(
    session: AsyncSession, store_ids: Sequence[int], since: datetime, until: datetime
) -> list[LedgerTotals]:
    """Every product with a movement before `until` in these stores: balances at `since` and
    `until` and what came in, sold (net of customer returns) and shrank (stocktake losses and
    write-offs less stocktake gains) in between; positive numbers mean units."""
    if not store_ids:
        return []
    m = StockMovement
    inside = m.occurred_at >= since

    def moved(kinds: Sequence[str]) -> Any:
        return func.sum(case((and_(inside, m.kind.in_(kinds)), m.quantity), else_=0))

    stmt = (
        select(
            m.store_id,
            m.product_id,
            func.sum(case((m.occurred_at < since, m.quantity), else_=0)).label("opening"),
            func.sum(m.quantity).label("closing"),
            moved(RECEIVED_KINDS).label("received"),
            moved(SOLD_KINDS).label("sold"),
            moved(SHRINK_KINDS).label("shrunk"),
        )
        .where(m.store_id.in_(list(store_ids)), m.occurred_at < until)
        .group_by(m.store_id, m.product_id)
    )
    return [
        LedgerTotals(
            store_id=r.store_id,
            product_id=r.product_id,
            opening=int(r.opening or 0),
            closing=int(r.closing or 0),
            received=int(r.received or 0),
            sold=-int(r.sold or 0),
            shrunk=-int(r.shrunk or 0),
        )
        for r in (await session.execute(stmt)).all()
    ]
