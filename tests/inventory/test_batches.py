"""Expiry batches: attributed first-expired-first-out, near-expiry alerts once, write-off."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import ValidationFailed
from selfmart.inventory import batches
from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.models import StockAlert, StockBatch

from ..builders import auth_headers, make_store, make_user
from .builders import CLERK, make_product


async def _receive(
    session: AsyncSession, store_id: int, product_id: int, qty: int, expiry: date | None, no: str
) -> None:
    await inventory.receive(
        session,
        store_id=store_id,
        lines=[inventory.ReceiptLine(product_id, qty, expiry, no)],
        document=("test", no),
        actor=CLERK,
    )


async def test_batches_are_attributed_oldest_out_first_and_near_expiry_alerts_once(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    milk = await make_product(session, name="鲜牛奶", track_batches=True, shelf_life_days=7)
    today = utcnow().date()
    await _receive(session, store.id, milk.id, 10, today + timedelta(days=2), "A")
    await _receive(session, store.id, milk.id, 10, today + timedelta(days=9), "B")
    await _receive(session, store.id, milk.id, 5, None, "C")  # today + shelf life
    await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(milk.id, 6)],
        document=("order", 1),
        actor=CLERK,
        allow_negative=False,
    )
    views = await batches.list_batches(session, store.id, actor=CLERK)
    assert [(v.batch.batch_no, v.remaining) for v in views] == [("A", 4), ("C", 5), ("B", 10)]
    assert views[1].batch.expiry_date == today + timedelta(days=7)
    soon = await batches.list_batches(session, store.id, actor=CLERK, expiring_within_days=3)
    assert [v.batch.batch_no for v in soon] == ["A"]

    opened = await batches.scan_near_expiry(session, within_days=3)
    assert len(opened) == 1
    assert await batches.scan_near_expiry(session, within_days=3) == []  # still one open alert
    alert = await session.scalar(select(StockAlert).where(StockAlert.id == opened[0]))
    assert alert is not None
    assert (alert.kind, alert.quantity, alert.expiry_date) == (
        "near_expiry",
        4,
        today + timedelta(days=2),
    )

    batch_a = views[0].batch
    with pytest.raises(ValidationFailed):
        await batches.write_off_batch(
            session, store.id, batch_a.id, actor=CLERK, reason="expiry", quantity=5
        )
    view, booked = await batches.write_off_batch(
        session, store.id, batch_a.id, actor=CLERK, reason="临期报损"
    )
    assert (view.remaining, booked.delta, booked.balance_after) == (0, -4, 15)
    assert batch_a.closed_at is not None
    await session.refresh(alert)
    assert (alert.status, alert.resolution) == ("resolved", "manual")
    left = await batches.list_batches(session, store.id, actor=CLERK)
    assert [(v.batch.batch_no, v.remaining) for v in left] == [("C", 5), ("B", 10)]


async def test_a_batch_product_needs_an_expiry_date_or_a_shelf_life(
    session: AsyncSession,
) -> None:
    store = await make_store(session)
    p = await make_product(session, track_batches=True)
    with pytest.raises(ValidationFailed) as err:
        await _receive(session, store.id, p.id, 3, None, "X")
    assert err.value.details[0].field == "lines[0].expiry_date"
    assert (
        await session.scalars(select(StockBatch).where(StockBatch.product_id == p.id))
    ).all() == []


async def test_batches_api_lists_and_writes_off(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    store, other = await make_store(session), await make_store(session)
    p = await make_product(session, name="面包", track_batches=True, shelf_life_days=3)
    await _receive(session, store.id, p.id, 8, None, "L9")
    headers = await auth_headers(session, await make_user(session, role="admin", stores=[store]))
    r = await client.get(
        f"/api/v1/stores/{store.id}/stock-batches?expiring_within_days=5", headers=headers
    )
    (row,) = r.json()
    assert (row["batch_no"], row["remaining"]) == ("L9", 8)
    r = await client.post(
        f"/api/v1/stores/{store.id}/stock-batches/{row['id']}/write-off",
        json={"quantity": 3, "reason": "包装破损"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["remaining"], r.json()["quantity_written_off"]) == (5, 3)
    r = await client.post(
        f"/api/v1/stores/{store.id}/stock-batches/{row['id']}/write-off",
        json={"reason": ""},
        headers=headers,
    )
    assert r.status_code == 422
    r = await client.get(f"/api/v1/stores/{other.id}/stock-batches", headers=headers)
    assert r.status_code == 404
    assert await inventory.balances(session, store.id, [p.id]) == {p.id: 5}
