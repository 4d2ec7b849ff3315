"""What orders ask of the stock ledger: book a sale, reverse it, take returned goods back.

Every call goes through the inventory service, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from selfmart.iam.actor import Actor
from selfmart.inventory import ledger
from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.models import Order, OrderLine
from selfmart.payments.service import RefundLineSpec


def document(order_id: int) -> tuple[str, str]:
    return ("order", str(order_id))


@dataclass(frozen=True, slots=True)
class Booking:
    #: the sale is booked (False: the store refuses to oversell and a line was short)
    ok: bool
    #: lines the shelf could not cover: {"product_id", "requested", "short_by"}
    short: list[dict[str, int]]


async def book_sale(
    session: AsyncSession,
    *,
    store_id: int,
    order_id: int,
    lines: Sequence[tuple[int, int]],
    allow_negative: bool,
    actor: Actor,
) -> Booking:
    """Book the sale out of the store's stock, in the intake's transaction."""
    result = await inventory.deduct_for_sale(
        session,
        store_id=store_id,
        lines=list(lines),
        document=document(order_id),
        actor=actor,
        allow_negative=allow_negative,
    )
    return Booking(
        ok=bool(result.ok),
        short=[
            {"product_id": ln.product_id, "requested": ln.requested, "short_by": ln.short_by}
            for ln in result.short_lines
        ],
    )


async def hold(
    session: AsyncSession,
    *,
    store_id: int,
    product_ids: Sequence[int],
    create: bool = False,
    now: datetime | None = None,
) -> None:
    """Lock the store's balance rows of `product_ids` until the transaction ends, in product-id
    order, in one statement: what a batch of orders does before its first order, so that its
    sales (each of which locks its own rows in that order too) never wait on another
    transaction while holding a row that transaction wants. `create` (a store that sells past
    an empty shelf, where a sale creates a missing row): the missing rows are created at zero in
    the same ordered pass, so none is created later out of order; otherwise a product without
    a balance row has nothing to lock (its sales are refused)."""
    if create:
        await ledger.lock_creating(session, store_id, product_ids, now or utcnow())
    else:
        await ledger.lock(session, store_id, product_ids)


async def reverse_sale(session: AsyncSession, order: Order, *, actor: Actor, reason: str) -> None:
    """The order will not be paid (cancelled, closed): its goods are back on the shelf."""
    rows = (
        await session.execute(
            select(OrderLine.product_id, OrderLine.quantity - OrderLine.cancelled_qty).where(
                OrderLine.order_id == order.id
            )
        )
    ).all()
    # Cancelled units went back when they were cancelled.
    lines = [(pid, qty) for pid, qty in rows if qty > 0]
    if lines:
        await inventory.restock_for_return(
            session,
            store_id=order.store_id,
            lines=lines,
            document=document(order.id),
            actor=actor,
        )
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(stock_booked=False)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(order, "stock_booked", False)


async def take_back(
    session: AsyncSession,
    order: Order,
    specs: Sequence[RefundLineSpec],
    *,
    actor: Actor,
    reason: str,
) -> None:
    """Returned goods: resellable ones go back into stock; the rest stay off the books (the
    sale already took them out), recorded as written off on the refund line."""
    restock = [s for s in specs if s.disposition == "restock"]
    if not restock or not order.stock_booked:
        return
    rows = await session.execute(
        select(OrderLine.id, OrderLine.product_id).where(
            OrderLine.id.in_([s.order_line_id for s in restock])
        )
    )
    product_of: dict[int, int] = {r.id: r.product_id for r in rows}
    await inventory.restock_for_return(
        session,
        store_id=order.store_id,
        lines=[(product_of[s.order_line_id], s.quantity) for s in restock],
        document=document(order.id),
        actor=actor,
    )


async def put_back(
    session: AsyncSession, order: Order, lines: Sequence[tuple[int, int]], *, actor: Actor
) -> None:
    """Units taken off an unpaid order's bill go back on the shelf (the sale is reversed)."""
    lines = [(pid, qty) for pid, qty in lines if qty > 0]
    if lines and order.stock_booked:
        await inventory.restock_for_return(
            session, store_id=order.store_id, lines=lines, document=document(order.id), actor=actor
        )
