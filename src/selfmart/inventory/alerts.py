"""Low-stock and near-expiry alerts: one open alert per product and store, raised when the
balance crosses down to its threshold, closed when it climbs back above or a person resolves it.
A threshold change, a new or imported product and a new listing are evaluated too
(`reevaluate`), so the alerts agree with what the stock page shows.

Low means `quantity <= threshold`; a threshold of 0 still alerts when the shelf runs out (an
unmanned store has nobody to notice). Alerts are rows in the caller's transaction; telling
people about them happens after commit (see `notifications`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, func, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import IllegalTransition, NotFound
from selfmart.iam.actor import Actor
from selfmart.inventory import notifications
from selfmart.inventory.ledger import Booked, dialect_insert
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import utcnow
from selfmart.models import Product, StockAlert, StockLevel, StoreProduct

alerts_table = cast(Table, StockAlert.__table__)

LOW_STOCK = "low_stock"
NEAR_EXPIRY = "near_expiry"
ALERT_KINDS = (LOW_STOCK, NEAR_EXPIRY)


def is_low(quantity: int, threshold: int) -> bool:
    return quantity <= max(threshold, 0)


def stock_state(quantity: int, threshold: int) -> str:
    """ok | low | out, as the console shows it."""
    if quantity <= 0:
        return "out"
    if quantity <= threshold:
        return "low"
    return "ok"


async def after_booking(
    session: AsyncSession, store_id: int, booked: Sequence[Booked], now: datetime
) -> None:
    """Open an alert for every balance that just crossed down to its threshold; close the open
    ones whose balance just climbed back above. Balances that stay on one side cost nothing."""
    down = [
        (b.product_id, b.balance_after, b.threshold)
        for b in booked
        if is_low(b.balance_after, b.threshold) and not is_low(b.balance_before, b.threshold)
    ]
    up = [
        b.product_id
        for b in booked
        if not is_low(b.balance_after, b.threshold) and is_low(b.balance_before, b.threshold)
    ]
    await _open(session, store_id, down, now)
    await _close(session, store_id, up, now)


async def _open(
    session: AsyncSession, store_id: int, low: Sequence[tuple[int, int, int]], now: datetime
) -> None:
    """Open a low-stock alert per (product, quantity, threshold) and announce the ones opened;
    a product that already has one open (the unique partial index) is left alone, so a
    product is announced once however many times it is found low."""
    if not low:
        return
    rows = [
        {
            "store_id": store_id,
            "product_id": product_id,
            "kind": LOW_STOCK,
            "batch_key": 0,
            "status": "open",
            "threshold": threshold,
            "quantity": quantity,
            "opened_at": now,
        }
        for product_id, quantity, threshold in low
    ]
    opened: list[int] = []
    # A multi-row VALUES has 8 parameters a row: 500 rows stay within what both backends take
    # in one statement (an import lists thousands of products in many stores at once).
    for i in range(0, len(rows), 500):
        stmt = (
            dialect_insert(session, alerts_table)
            .values(rows[i : i + 500])
            .on_conflict_do_nothing()
            .returning(alerts_table.c.id)
        )
        opened += [int(aid) for aid in (await session.execute(stmt)).scalars()]
    if opened:
        await notifications.announce(session, opened)


async def _close(
    session: AsyncSession, store_id: int, product_ids: Sequence[int], now: datetime
) -> None:
    if not product_ids:
        return
    await session.execute(
        update(alerts_table)
        .where(
            alerts_table.c.store_id == store_id,
            alerts_table.c.product_id.in_(list(product_ids)),
            alerts_table.c.kind == LOW_STOCK,
            alerts_table.c.status == "open",
        )
        .values(status="resolved", resolution="auto", resolved_at=now)
    )


async def reevaluate(
    session: AsyncSession,
    product_ids: Sequence[int],
    *,
    store_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> None:
    """Bring the low-stock alerts of some products in line with their balance and threshold now,
    when something other than a stock movement changed which side of the threshold they are on:
    a threshold was changed, a product was created, imported or listed in a store.

    Looks at every store that lists or stocks the products (or only `store_ids`), as the stock
    page does: low (or out) there opens an alert through the same path as a sale, so it is
    announced once; no longer low, or neither listed nor stocked, closes the open one."""
    if not product_ids:
        return
    now = now or utcnow()
    ids = sorted(set(product_ids))
    level = StockLevel.__table__.alias("sl")
    listing = StoreProduct.__table__.alias("sp")
    threshold = func.coalesce(listing.c.low_stock_threshold, Product.low_stock_threshold, 0)
    stores = select(level.c.store_id.label("store_id"), level.c.product_id.label("product_id"))
    stores = stores.where(level.c.product_id.in_(ids))
    listed = select(listing.c.store_id, listing.c.product_id).where(listing.c.product_id.in_(ids))
    if store_ids is not None:
        stores = stores.where(level.c.store_id.in_(list(store_ids)))
        listed = listed.where(listing.c.store_id.in_(list(store_ids)))
    pairs = union(stores, listed).subquery("pairs")
    stmt = (
        select(
            pairs.c.store_id,
            pairs.c.product_id,
            func.coalesce(level.c.quantity, 0),
            threshold,
            level.c.id.is_not(None),
            func.coalesce(listing.c.is_listed, False),
        )
        .select_from(pairs)
        .join(Product, Product.id == pairs.c.product_id)
        .outerjoin(
            level,
            and_(level.c.store_id == pairs.c.store_id, level.c.product_id == pairs.c.product_id),
        )
        .outerjoin(
            listing,
            and_(
                listing.c.store_id == pairs.c.store_id, listing.c.product_id == pairs.c.product_id
            ),
        )
        .order_by(pairs.c.store_id, pairs.c.product_id)
    )
    low: dict[int, list[tuple[int, int, int]]] = {}
    fine: dict[int, list[int]] = {}
    for store_id, product_id, quantity, limit, stocked, is_listed in await session.execute(stmt):
        if (stocked or is_listed) and is_low(int(quantity), int(limit)):
            low.setdefault(int(store_id), []).append((int(product_id), int(quantity), int(limit)))
        else:
            fine.setdefault(int(store_id), []).append(int(product_id))
    for store_id in sorted(low.keys() | fine.keys()):
        await _open(session, store_id, low.get(store_id, []), now)
        await _close(session, store_id, fine.get(store_id, []), now)


def _scoped(stmt: Select[Any], actor: Actor) -> Select[Any]:
    if actor.store_ids is not None:
        stmt = stmt.where(StockAlert.store_id.in_(actor.store_ids))
    return stmt


async def list_alerts(
    session: AsyncSession,
    *,
    actor: Actor,
    params: PageParams,
    store_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    product_id: int | None = None,
) -> tuple[list[StockAlert], int]:
    stmt = _scoped(select(StockAlert), actor)
    if store_id is not None:
        stmt = stmt.where(StockAlert.store_id == store_id)
    if status is not None:
        stmt = stmt.where(StockAlert.status == status)
    if kind is not None:
        stmt = stmt.where(StockAlert.kind == kind)
    if product_id is not None:
        stmt = stmt.where(StockAlert.product_id == product_id)
    stmt = stmt.order_by(StockAlert.opened_at.desc(), StockAlert.id.desc())
    return await paginate(session, stmt, params)


async def get_alert(session: AsyncSession, alert_id: int, *, actor: Actor) -> StockAlert:
    stmt = select(StockAlert).where(StockAlert.id == alert_id)
    if actor.store_ids is not None:
        stmt = stmt.where(StockAlert.store_id.in_(actor.store_ids))
    alert = await session.scalar(stmt.with_for_update())
    if alert is None:
        raise NotFound("No such alert", field="alert_id")
    return alert


_FIELDS = ("status", "resolution", "resolved_by", "resolution_note")


async def resolve(
    session: AsyncSession, alert_id: int, *, actor: Actor, note: str | None = None
) -> StockAlert:
    alert = await get_alert(session, alert_id, actor=actor)
    if alert.status != "open":
        raise IllegalTransition(
            f"The alert cannot go from {alert.status} to resolved",
            field="status",
        )
    before = audit.snapshot(alert, _FIELDS)
    alert.status = "resolved"
    alert.resolution = "manual"
    alert.resolved_at = utcnow()
    alert.resolved_by = actor.name
    alert.resolution_note = note
    await session.flush()
    await audit.record(
        session,
        actor,
        "stock_alert.resolve",
        "stock_alert",
        alert.id,
        store_id=alert.store_id,
        before=before,
        after=audit.snapshot(alert, _FIELDS),
        note=note,
    )
    return alert
