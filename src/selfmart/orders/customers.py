"""What the members domain asks of orders: a member's orders and what they bought (purchase
history), moving a member's orders to another member when two records are merged, and
taking a member's personal data off their orders when they are erased."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderLine

#: Order statuses whose goods the customer took and paid for.
BOUGHT = ("paid", "completed", "refund_requested", "partially_refunded")


async def move_member_orders(
    session: AsyncSession, *, from_member_id: int, to_member_id: int, to_member_no: str
) -> int:
    """Every order of one member becomes the other's (merge); returns how many moved."""
    result = await session.execute(
        update(Order)
        .where(Order.member_id == from_member_id)
        .values(member_id=to_member_id, member_no=to_member_no, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def anonymise_member_orders(session: AsyncSession, *, member_id: int, member_no: str) -> int:
    """Erase: the customer's name and phone leave the member's orders (which stay, with their
    money and lines), and the orders a terminal only claimed for the member's number without
    identifying them (not linked, but perhaps typed with the person's name and phone).
    Returns how many orders changed."""
    claimed = (Order.member_id.is_(None)) & (Order.member_no == member_no)
    result = await session.execute(
        update(Order)
        .where((Order.member_id == member_id) | claimed)
        .values(customer_name=None, customer_phone=None, phone_last4=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def relink(order: Order, *, member_id: int, member_no: str) -> None:
    """Point an order (in the caller's transaction, its row already theirs) at the member a
    merge made of its member."""
    order.member_id = member_id
    order.member_no = member_no


@dataclass(frozen=True, slots=True)
class OrderSummary:
    id: int
    order_no: str
    store_id: int
    status: str
    total_fen: int
    paid_fen: int
    refunded_fen: int
    item_count: int
    created_at: datetime
    paid_at: datetime | None


async def member_orders(
    session: AsyncSession, member_id: int, *, offset: int, limit: int
) -> tuple[list[OrderSummary], int]:
    """The member's orders, newest first (every status: the profile shows what happened)."""
    where = Order.member_id == member_id
    total = int(await session.scalar(select(func.count()).where(where)) or 0)
    rows = (
        await session.execute(
            select(
                Order.id, Order.order_no, Order.store_id, Order.status, Order.total_fen,
                Order.paid_fen, Order.refunded_fen, Order.item_count, Order.created_at,
                Order.paid_at,
            )
            .where(where)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .offset(offset)
            .limit(limit)
        )
    ).all()  # fmt: skip
    return [OrderSummary(**r._asdict()) for r in rows], total


@dataclass(frozen=True, slots=True)
class ProductBought:
    product_id: int
    name: str
    quantity: int
    spend_fen: int
    orders: int


async def favourite_products(
    session: AsyncSession, member_id: int, *, limit: int = 10
) -> list[ProductBought]:
    """What the member bought most (units kept, less refunds), then spent most on."""
    qty = func.sum(OrderLine.quantity - OrderLine.cancelled_qty - OrderLine.refunded_qty)
    spend = func.sum(OrderLine.amount_fen - OrderLine.cancelled_fen - OrderLine.refunded_fen)
    rows = (
        await session.execute(
            select(
                OrderLine.product_id,
                func.max(OrderLine.name),
                qty,
                spend,
                func.count(func.distinct(OrderLine.order_id)),
            )
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.member_id == member_id, Order.status.in_(BOUGHT))
            .group_by(OrderLine.product_id)
            .having(qty > 0)
            .order_by(qty.desc(), spend.desc(), OrderLine.product_id)
            .limit(limit)
        )
    ).all()
    return [ProductBought(int(p), n, int(q), int(s), int(o)) for p, n, q, s, o in rows]
