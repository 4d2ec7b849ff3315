"""Customers look up their own orders: by the signed link in the receipt's QR code, or by
order number plus the last four digits of their phone. Rate-limited, and the answer shows the
order's status, lines, payments and refunds and nothing else (no name, phone or member no.).

A wrong number and a wrong phone get the same 404, so neither can be probed. The limits are
the app's shared rate limits (`selfmart.kit.ratelimit`: in Redis when `redis_url` is set, so
every process counts together): look-ups per client address per minute, counted by the routes
before anything is read, and wrong guesses per order number per hour, counted here.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import NotFound, TooManyRequests
from selfmart.kit.ratelimit import ORDER_LOOKUP_FAILURES, RateLimiter
from selfmart.models import Order, OrderLine, Payment, Refund, Store
from selfmart.orders import receipts


class OrderNotFound(NotFound):
    code, message = "order_not_found", "No order matches"


async def public_view(session: AsyncSession, order_id: int) -> dict[str, Any]:
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound()
    store = await session.get_one(Store, order.store_id)
    lines = (
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)
        )
    ).all()
    pays = (
        await session.scalars(
            select(Payment).where(Payment.order_id == order.id).order_by(Payment.id)
        )
    ).all()
    refunds = (
        await session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))
    ).all()
    return {
        "order_no": order.order_no,
        "status": order.status,
        "purchased_at": order.purchased_at,
        "store_name": store.name,
        "store_timezone": store.timezone,
        "store_contact": store.phone,
        "item_count": order.item_count,
        "total_fen": order.total_fen,
        "paid_fen": order.paid_fen,
        "refunded_fen": order.refunded_fen,
        "payment_method": order.payment_method,
        "lines": [
            {
                "name": ln.name,
                "spec": ln.spec,
                "quantity": ln.quantity,
                "unit_price_fen": ln.unit_price_fen,
                "discount_fen": ln.discount_fen,
                "amount_fen": ln.amount_fen,
                "refunded_qty": ln.refunded_qty,
                "cancelled_qty": ln.cancelled_qty,
            }
            for ln in lines
        ],
        "payments": [
            {
                "channel": p.channel,
                "status": p.status,
                "amount_fen": p.amount_fen,
                "at": p.succeeded_at or p.created_at,
            }
            for p in pays
        ],
        "refunds": [
            {
                "status": r.status,
                "amount_fen": r.amount_fen,
                "requested_at": r.created_at,
                "completed_at": r.completed_at,
            }
            for r in refunds
        ],
    }


async def by_receipt(session: AsyncSession, token: str) -> dict[str, Any]:
    order_id = receipts.read_token(token)
    if order_id is None:
        raise OrderNotFound()
    return await public_view(session, order_id)


async def by_number(
    session: AsyncSession, order_no: str, phone_last4: str, *, limiter: RateLimiter
) -> dict[str, Any]:
    order_id = await session.scalar(
        select(Order.id).where(Order.order_no == order_no, Order.phone_last4 == phone_last4)
    )
    if order_id is None:
        # Guessing one order's phone from many addresses is limited by the order number.
        wait = await limiter.hit(ORDER_LOOKUP_FAILURES, order_no)
        if wait is not None:
            retry = math.ceil(wait)
            raise TooManyRequests(f"Too many look-ups; try again in {retry} s", retry_after=retry)
        raise OrderNotFound()
    # The customer proved the order is theirs: hand back the receipt's signed token, so the
    # page can pay what is owed as the receipt's own link does.
    return await public_view(session, order_id) | {"receipt_token": receipts.make_token(order_id)}


async def for_terminal(session: AsyncSession, order_no: str, *, store_id: int) -> dict[str, Any]:
    """A terminal reads an order of its own store by the number on the receipt."""
    order_id = await session.scalar(
        select(Order.id).where(Order.order_no == order_no, Order.store_id == store_id)
    )
    if order_id is None:
        raise OrderNotFound(field="order_no")
    return await public_view(session, order_id)
