"""Expiry batches: what is left of each received lot, near-expiry alerts, and writing lots off.

Sales do not name batches (a terminal scans a barcode, not a lot). What is left of each batch
is attributed from the balance first-expired-first-out: the shelf is assumed to hold the lots
that expire last, so the oldest lot is the first to run out. Write-offs name their batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import Conflict, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import alerts, ledger, notifications
from selfmart.inventory import service as inventory
from selfmart.inventory.queries import visible_store
from selfmart.kit.time import utcnow
from selfmart.models import StockAlert, StockBatch

_alerts = cast(Table, StockAlert.__table__)


@dataclass(frozen=True, slots=True)
class BatchView:
    batch: StockBatch
    remaining: int

    @property
    def expiry_date(self) -> date:
        return self.batch.expiry_date


def attribute(balance: int, batches: Sequence[StockBatch]) -> dict[int, int]:
    """How much of `balance` each batch still holds: the latest-expiring lots first."""
    left = max(balance, 0)
    out: dict[int, int] = {}
    for b in sorted(batches, key=lambda b: (b.expiry_date, b.received_at, b.id), reverse=True):
        held = min(max(b.quantity_received - b.quantity_written_off, 0), left)
        out[b.id] = held
        left -= held
    return out


async def _views(
    session: AsyncSession, store_id: int, product_ids: Sequence[int] | None = None
) -> list[BatchView]:
    stmt = (
        select(StockBatch)
        .where(StockBatch.store_id == store_id, StockBatch.closed_at.is_(None))
        .execution_options(populate_existing=True)  # what is committed, not what was loaded
    )
    if product_ids is not None:
        stmt = stmt.where(StockBatch.product_id.in_(list(product_ids)))
    batches = list((await session.scalars(stmt)).all())
    by_product: dict[int, list[StockBatch]] = {}
    for b in batches:
        by_product.setdefault(b.product_id, []).append(b)
    balances = await ledger.current(session, store_id, list(by_product))
    views: list[BatchView] = []
    for pid, group in by_product.items():
        held = attribute(balances[pid], group)
        views.extend(BatchView(b, held[b.id]) for b in group)
    views.sort(key=lambda v: (v.batch.expiry_date, v.batch.id))
    return views


async def list_batches(
    session: AsyncSession,
    store_id: int,
    *,
    actor: Actor,
    product_id: int | None = None,
    expiring_within_days: int | None = None,
    include_empty: bool = False,
) -> list[BatchView]:
    """Open batches of a store with what is left of each, soonest expiry first."""
    await visible_store(session, store_id, actor)
    views = await _views(session, store_id, None if product_id is None else [product_id])
    if expiring_within_days is not None:
        horizon = utcnow().date() + timedelta(days=expiring_within_days)
        views = [v for v in views if v.batch.expiry_date <= horizon]
    if not include_empty:
        views = [v for v in views if v.remaining > 0]
    return views


async def scan_near_expiry(
    session: AsyncSession, *, within_days: int = 3, today: date | None = None
) -> list[int]:
    """Open one near-expiry alert per batch that expires within `within_days` and still holds
    stock; close batches that hold nothing and resolve their alerts. Returns alerts opened."""
    today = today or utcnow().date()
    horizon = today + timedelta(days=within_days)
    now = utcnow()
    store_ids = (
        await session.scalars(
            select(StockBatch.store_id).where(StockBatch.closed_at.is_(None)).distinct()
        )
    ).all()
    opened: list[int] = []
    for store_id in store_ids:
        for view in await _views(session, store_id):
            b = view.batch
            if view.remaining == 0 and b.expiry_date <= horizon:
                b.closed_at = now
                await _resolve_batch_alert(session, b.id, "auto", None)
                continue
            if b.expiry_date > horizon:
                continue
            stmt = (
                ledger.dialect_insert(session, _alerts)
                .values(
                    store_id=store_id,
                    product_id=b.product_id,
                    kind=alerts.NEAR_EXPIRY,
                    batch_key=b.id,
                    status="open",
                    threshold=None,
                    quantity=view.remaining,
                    expiry_date=b.expiry_date,
                    opened_at=now,
                )
                .on_conflict_do_nothing()
                .returning(_alerts.c.id)
            )
            opened.extend(int(i) for i in (await session.execute(stmt)).scalars())
    await session.flush()
    if opened:
        await notifications.announce(session, opened)
    return opened


async def _resolve_batch_alert(
    session: AsyncSession, batch_id: int, resolution: str, by: str | None
) -> None:
    await session.execute(
        update(_alerts)
        .where(
            _alerts.c.kind == alerts.NEAR_EXPIRY,
            _alerts.c.batch_key == batch_id,
            _alerts.c.status == "open",
        )
        .values(status="resolved", resolution=resolution, resolved_at=utcnow(), resolved_by=by)
    )


async def write_off_batch(
    session: AsyncSession,
    store_id: int,
    batch_id: int,
    *,
    actor: Actor,
    reason: str,
    quantity: int | None = None,
) -> tuple[BatchView, ledger.Booked]:
    """Write off what is left of a batch (or part of it); its near-expiry alert is resolved
    when nothing of it is left."""
    await visible_store(session, store_id, actor)
    batch = await session.scalar(
        select(StockBatch).where(StockBatch.id == batch_id, StockBatch.store_id == store_id)
    )
    if batch is None:
        raise NotFound("No such batch", field="batch_id")
    await ledger.lock(session, store_id, [batch.product_id])
    # Read again under the lock: a write-off racing this one may have closed it meanwhile.
    await session.refresh(batch)
    if batch.closed_at is not None:
        raise Conflict("The batch is closed: nothing of it is left", field="batch_id")
    views = await _views(session, store_id, [batch.product_id])
    view = next(v for v in views if v.batch.id == batch.id)
    qty = view.remaining if quantity is None else quantity
    if qty <= 0 or qty > view.remaining:
        raise ValidationFailed(
            f"The batch holds {view.remaining}; write off between 1 and that",
            field="quantity",
        )
    booked = await inventory.write_off(
        session,
        store_id=store_id,
        product_id=batch.product_id,
        quantity=qty,
        reason=reason,
        actor=actor,
        batch_id=batch.id,
        document=("stock_batch", batch.id),
    )
    batch.quantity_written_off += qty
    remaining = view.remaining - qty
    if remaining == 0:
        batch.closed_at = utcnow()
        await _resolve_batch_alert(session, batch.id, "manual", actor.name)
    await session.flush()
    return BatchView(batch, remaining), booked
