"""Builders for analytics tests: orders paid at a chosen instant, and refunds that went through
on a chosen instant, with exactly the totals the tests add up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import (
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    Refund,
    RefundLine,
    Store,
)
from tests.orders.builders import make_order


async def sale(
    session: AsyncSession,
    store: Store,
    lines: list[tuple[Product, int]],
    *,
    paid_at: datetime | None,
    status: str = "paid",
    member_id: int | None = None,
    method: str = "wechat",
    created_at: datetime | None = None,
) -> Order:
    """An order created at `created_at` (default: paid_at) and paid at `paid_at`."""
    created = created_at or paid_at
    assert created is not None
    order = await make_order(
        session, store, lines, status=status, created_at=created, paid=paid_at is not None
    )
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(
            paid_at=paid_at,
            member_id=member_id,
            payment_method=method if paid_at else None,
            updated_at=paid_at or created,
        )
        .execution_options(synchronize_session=False)
    )
    await session.refresh(order)
    return order


async def refund(
    session: AsyncSession, order: Order, product: Product, quantity: int, *, at: datetime
) -> Refund:
    """A succeeded refund of `quantity` units of `product` in `order`, completed at `at`."""
    return await refund_lines(session, order, [(product, quantity)], at=at)


async def refund_lines(
    session: AsyncSession, order: Order, items: list[tuple[Product, int]], *, at: datetime
) -> Refund:
    """One succeeded refund of `quantity` units of each `product` in `order` (a refund line
    each), completed at `at`."""
    payment = await session.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment is not None
    lines: list[tuple[OrderLine, int, int]] = []
    for product, quantity in items:
        line = await session.scalar(
            select(OrderLine).where(
                OrderLine.order_id == order.id, OrderLine.product_id == product.id
            )
        )
        assert line is not None
        lines.append((line, quantity, line.unit_price_fen * quantity))
    total = sum(amount for _, _, amount in lines)
    record = Refund(
        order_id=order.id,
        payment_id=payment.id,
        store_id=order.store_id,
        channel="manual",
        status="succeeded",
        amount_fen=total,
        reason="破损",
        created_at=at,
        completed_at=at,
        actor_type="user",
        actor_name="test",
    )
    session.add(record)
    await session.flush()
    for line, quantity, amount in lines:
        session.add(
            RefundLine(
                refund_id=record.id,
                order_line_id=line.id,
                quantity=quantity,
                amount_fen=amount,
                disposition="restock",
            )
        )
        line.refunded_qty += quantity
        line.refunded_fen += amount
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(refunded_fen=Order.refunded_fen + total, status="partially_refunded")
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    return record


def feed_event(order: Order) -> OrderEvent:
    """The change-feed row a payment or a refund of the order writes with it (what the refresh
    and the live tail read)."""
    return OrderEvent(
        order_id=order.id,
        store_id=order.store_id,
        occurred_at=utcnow(),
        kind="transition",
        actor_type="system",
        actor_name="test",
        reason="test",
        data={},
    )
