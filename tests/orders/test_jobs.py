"""Background jobs of the orders domain: unpaid orders are closed when their time is up."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from selfmart.jobs import runtime
from selfmart.kit.time import utcnow
from selfmart.models import AuditLog, Order, OrderEvent
from selfmart.orders import tasks
from tests.builders import make_store
from tests.orders.builders import make_order, make_product
from tests.support import settings_for


async def test_close_unpaid_closes_only_expired_unpaid_orders(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    store = await make_store(session)
    p = await make_product(session, stores=[store])
    past = utcnow() - timedelta(hours=1)
    expired = await make_order(session, store, [(p, 1)], created_at=past)
    failed = await make_order(session, store, [(p, 1)], created_at=past, status="payment_failed")
    fresh = await make_order(session, store, [(p, 1)])
    paid = await make_order(session, store, [(p, 1)], created_at=past, status="paid", paid=True)
    await session.flush()

    async with runtime.running(settings_for(db_url), sessionmaker):
        assert await tasks.close_unpaid() == 2
        assert await tasks.close_unpaid() == 0  # nothing left to close

    for order, status in (
        (expired, "closed"),
        (failed, "closed"),
        (fresh, "awaiting_payment"),
        (paid, "paid"),
    ):
        await session.refresh(order)
        assert order.status == status, order.id
    assert expired.ended_at is not None
    event = await session.scalar(
        select(OrderEvent).where(
            OrderEvent.order_id == expired.id, OrderEvent.to_status == "closed"
        )
    )
    assert event is not None
    assert (event.actor_type, event.actor_name, event.reason) == (
        "job",
        "orders.close_unpaid",
        "payment_timeout",
    )
    entry = await session.scalar(
        select(AuditLog).where(
            AuditLog.entity_id == str(expired.id), AuditLog.action == "order.close_unpaid"
        )
    )
    assert entry is not None
    assert entry.actor_type == "job"
    assert (await session.get(Order, fresh.id)) is not None
