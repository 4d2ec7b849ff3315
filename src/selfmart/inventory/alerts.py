"""Low-stock and near-expiry alerts: one open alert per product and store, raised when the
balance crosses down to its threshold, closed when it climbs back above or a person resolves it.

Low means `quantity <= threshold`; a threshold of 0 still alerts when the shelf runs out (an
unmanned store has nobody to notice). Alerts are rows in the caller's transaction; telling
people about them happens after commit (see `notifications`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import IllegalTransition, NotFound
from selfmart.iam.actor import Actor
from selfmart.inventory import notifications
from selfmart.inventory.ledger import Booked, dialect_insert
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import utcnow
from selfmart.models import StockAlert

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
        b
        for b in booked
        if is_low(b.balance_after, b.threshold) and not is_low(b.balance_before, b.threshold)
    ]
    up = [
        b
        for b in booked
        if not is_low(b.balance_after, b.threshold) and is_low(b.balance_before, b.threshold)
    ]
    if down:
        rows = [
            {
                "store_id": store_id,
                "product_id": b.product_id,
                "kind": LOW_STOCK,
                "batch_key": 0,
                "status": "open",
                "threshold": b.threshold,
                "quantity": b.balance_after,
                "opened_at": now,
            }
            for b in down
        ]
        # An alert already open for the product (the unique partial index) is left alone.
        stmt = (
            dialect_insert(session, alerts_table)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(alerts_table.c.id)
        )
        opened = [int(i) for i in (await session.execute(stmt)).scalars()]
        if opened:
            await notifications.announce(session, opened)
    if up:
        await session.execute(
            update(alerts_table)
            .where(
                alerts_table.c.store_id == store_id,
                alerts_table.c.product_id.in_([b.product_id for b in up]),
                alerts_table.c.kind == LOW_STOCK,
                alerts_table.c.status == "open",
            )
            .values(status="resolved", resolution="auto", resolved_at=now)
        )


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
