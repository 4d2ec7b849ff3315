"""Low-stock alerts: one open alert per crossing, closed when stock is back or by a person."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import IllegalTransition
from selfmart.inventory import alerts
from selfmart.inventory import service as inventory
from selfmart.models import AuditLog, StockAlert

from ..builders import make_store
from .builders import CLERK, list_in_store, make_product, stock


async def _alerts(session: AsyncSession, store_id: int) -> list[StockAlert]:
    return list(
        (
            await session.scalars(
                select(StockAlert).where(StockAlert.store_id == store_id).order_by(StockAlert.id)
            )
        ).all()
    )


async def _sell(session: AsyncSession, store_id: int, product_id: int, qty: int) -> None:
    result = await inventory.deduct_for_sale(
        session,
        store_id=store_id,
        lines=[(product_id, qty)],
        document=("order", 1),
        actor=CLERK,
        allow_negative=True,
    )
    assert result.ok


async def test_crossing_below_the_threshold_opens_one_alert_not_one_per_sale(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    p = await make_product(session, low_stock_threshold=5)
    await stock(session, store.id, p.id, 8)
    await _sell(session, store.id, p.id, 2)  # 6: still above
    assert await _alerts(session, store.id) == []
    await _sell(session, store.id, p.id, 1)  # 5: at the threshold -> low
    await _sell(session, store.id, p.id, 1)  # 4
    await _sell(session, store.id, p.id, 4)  # 0
    await _sell(session, store.id, p.id, 1)  # -1
    found = await _alerts(session, store.id)
    assert len(found) == 1
    assert (found[0].kind, found[0].status, found[0].threshold, found[0].quantity) == (
        "low_stock",
        "open",
        5,
        5,
    )


async def test_restock_above_the_threshold_closes_the_alert_and_a_new_crossing_reopens(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    p = await make_product(session, low_stock_threshold=3)
    await stock(session, store.id, p.id, 4)
    await _sell(session, store.id, p.id, 2)
    await stock(session, store.id, p.id, 1)  # 3: still low, alert stays open
    assert [a.status for a in await _alerts(session, store.id)] == ["open"]
    await stock(session, store.id, p.id, 10)  # 13: back above
    first = (await _alerts(session, store.id))[0]
    await session.refresh(first)
    assert (first.status, first.resolution) == ("resolved", "auto")
    await _sell(session, store.id, p.id, 11)  # 2: low again
    assert [a.status for a in await _alerts(session, store.id)] == ["resolved", "open"]


async def test_store_override_beats_the_product_threshold(session: AsyncSession) -> None:
    store = await make_store(session)
    other = await make_store(session)
    p = await make_product(session, low_stock_threshold=2)
    await list_in_store(session, store.id, p.id, threshold=10)
    for s in (store, other):
        await stock(session, s.id, p.id, 12)
        await _sell(session, s.id, p.id, 3)  # 9: low only where the threshold is 10
    assert [a.threshold for a in await _alerts(session, store.id)] == [10]
    assert await _alerts(session, other.id) == []


async def test_a_zero_threshold_still_alerts_when_the_shelf_runs_out(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    p = await make_product(session)
    await stock(session, store.id, p.id, 2)
    await _sell(session, store.id, p.id, 1)
    assert await _alerts(session, store.id) == []
    await _sell(session, store.id, p.id, 1)
    assert [(a.quantity, a.threshold) for a in await _alerts(session, store.id)] == [(0, 0)]


async def test_manual_resolve_is_audited_and_stays_resolved_while_still_low(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    p = await make_product(session, low_stock_threshold=5)
    await stock(session, store.id, p.id, 6)
    await _sell(session, store.id, p.id, 2)
    alert = (await _alerts(session, store.id))[0]
    await alerts.resolve(session, alert.id, actor=CLERK, note="reorder placed")
    assert (alert.status, alert.resolution, alert.resolved_by) == ("resolved", "manual", "clerk")
    await session.flush()
    entry = await session.scalar(
        select(AuditLog).where(
            AuditLog.action == "stock_alert.resolve", AuditLog.entity_id == str(alert.id)
        )
    )
    assert entry is not None
    assert entry.changes["status"] == {"before": "open", "after": "resolved"}
    await _sell(session, store.id, p.id, 1)  # still low: no new alert
    assert len(await _alerts(session, store.id)) == 1
    with pytest.raises(IllegalTransition) as err:
        await alerts.resolve(session, alert.id, actor=CLERK)
    assert "resolved to resolved" in err.value.message
