"""Changing an order's lines when the shelf did not have them: cancel them (off the bill
before payment, refunded after) or substitute other products before payment."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.config import get_settings
from selfmart.errors import Conflict, ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.models import (
    Order,
    OrderLine,
    Store,
)
from selfmart.orders import lifecycle, pricing, refunds, statemachine, stock
from selfmart.orders.refunds import refundable_units
from selfmart.orders.schemas import IntakeLine, RefundBody
from selfmart.orders.statemachine import OrderStatus

S = OrderStatus


LINE_CHANGE_STATES = (S.AWAITING_PAYMENT, S.PAYMENT_FAILED, S.OUT_OF_STOCK)


async def _order_lines(session: AsyncSession, order: Order, line_ids: list[int]) -> list[OrderLine]:
    found = {
        line.id: line
        for line in (
            await session.scalars(
                select(OrderLine).where(OrderLine.order_id == order.id, OrderLine.id.in_(line_ids))
            )
        ).all()
    }
    problems = [
        ErrorDetail(
            field=f"line_ids.{i}", reason="not_found", message=f"Line {lid} is not on this order"
        )
        for i, lid in enumerate(line_ids)
        if lid not in found
    ]
    if problems or not line_ids:
        raise ValidationFailed(
            "Name the lines of this order to change",
            details=problems or [ErrorDetail(field="line_ids", reason="missing")],
        )
    return [found[lid] for lid in line_ids]


async def _take_off_bill(
    session: AsyncSession, order: Order, lines: list[OrderLine], *, actor: Actor
) -> list[tuple[int, int]]:
    """Cancel what is left of `lines` on an unpaid order; returns (product, units) put back."""
    now = utcnow()
    back: list[tuple[int, int]] = []
    less_total = less_subtotal = less_items = 0
    for line in lines:
        units = line.quantity - line.cancelled_qty
        if units <= 0:
            continue
        amount = line.amount_fen - line.cancelled_fen
        line.cancelled_qty = line.quantity
        line.cancelled_fen = line.amount_fen
        less_total += amount
        less_subtotal += line.list_price_fen * units
        less_items += units
        back.append((line.product_id, units))
    order.total_fen -= less_total
    order.subtotal_fen -= less_subtotal
    order.discount_fen = order.subtotal_fen - order.total_fen
    order.item_count -= less_items
    order.updated_at = now
    await session.flush()
    await stock.put_back(session, order, back, actor=actor)
    return back


async def _after_line_change(
    session: AsyncSession, order: Order, *, actor: Actor, reason: str
) -> None:
    """An order whose lines changed: nothing left is cancelled; an out-of-stock order whose
    remaining lines the shelf now covers is booked and waits for payment again."""
    left = [
        (pid, qty)
        for pid, qty in (
            await session.execute(
                select(OrderLine.product_id, OrderLine.quantity - OrderLine.cancelled_qty).where(
                    OrderLine.order_id == order.id
                )
            )
        ).all()
        if qty > 0
    ]
    if not left:
        await lifecycle.transition(
            session,
            order,
            S.CANCELLED,
            actor=actor,
            reason=reason,
            note="every line was taken off the order",
            audit_action="order.cancel",
        )
        order.stock_booked = False
        await session.flush()
        return
    if order.status == S.OUT_OF_STOCK and not order.stock_booked:
        store = await session.get_one(Store, order.store_id)
        booked = await stock.book_sale(
            session,
            store_id=order.store_id,
            order_id=order.id,
            lines=left,
            allow_negative=store.allow_negative_stock,
            actor=actor,
        )
        if booked.ok:
            order.stock_booked = True
            order.expires_at = utcnow() + timedelta(
                minutes=get_settings().order_payment_timeout_minutes
            )
            await session.flush()
            await lifecycle.transition(
                session,
                order,
                S.AWAITING_PAYMENT,
                actor=actor,
                reason=reason,
                audit_action="order.rebook",
            )


async def cancel_refund_body(
    session: AsyncSession, order: Order, line_ids: list[int], *, note: str | None
) -> RefundBody:
    """The refund that cancels lines of a paid order: what is left of each, not resellable."""
    from selfmart.orders.schemas import RefundLineIn

    lines = await _order_lines(session, order, line_ids)
    wanted = [
        RefundLineIn(line_id=ln.id, quantity=refundable_units(ln), disposition="write_off")
        for ln in lines
        if refundable_units(ln) > 0
    ]
    if not wanted:
        raise Conflict("Those lines are already refunded", field="line_ids")
    return RefundBody(lines=wanted, reason=note or "lines cancelled: not on the shelf")


async def cancel_lines(
    session: AsyncSession, order: Order, line_ids: list[int], *, note: str | None, actor: Actor
) -> None:
    """Take lines off an order whose goods were not there: off the bill before payment, or
    refunded (as not resellable) after it."""
    if order.status in statemachine.REFUNDABLE_STATES:
        body = await cancel_refund_body(session, order, line_ids, note=note)
        await refunds.refund(session, order, body, actor=actor)
        return
    lines = await _order_lines(session, order, line_ids)
    if order.status not in LINE_CHANGE_STATES:
        raise Conflict(f"Lines of a {order.status} order cannot be changed", field="action")
    back = await _take_off_bill(session, order, lines, actor=actor)
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="note",
        reason="lines_cancelled",
        note=note,
        data={"lines": [{"product_id": p, "quantity": q} for p, q in back]},
    )
    await _after_line_change(session, order, actor=actor, reason="lines_cancelled")


async def substitute_lines(
    session: AsyncSession,
    order: Order,
    substitutes: dict[int, int],
    *,
    note: str | None,
    actor: Actor,
) -> None:
    """Before payment: sell other products in place of lines the shelf did not have (same
    quantities, priced by the server)."""
    if order.status not in LINE_CHANGE_STATES:
        raise Conflict(
            "Lines can be substituted before payment only; refund or cancel them instead",
            field="action",
        )
    lines = await _order_lines(session, order, list(substitutes))
    replacing = [(ln, ln.quantity - ln.cancelled_qty) for ln in lines]
    from selfmart.members import pricing as member_pricing  # the member's tier discount

    discount_bp, member_prices = await member_pricing.terms_for(session, order.member_id)
    priced = await pricing.price(
        session,
        store_id=order.store_id,
        lines=[
            IntakeLine(product_id=substitutes[ln.id], quantity=units)
            for ln, units in replacing
            if units > 0
        ],
        member=order.member_id is not None,  # a bare member_no is an unverified claim
        terminal_total_fen=None,
        discount_bp=discount_bp,
        member_prices=member_prices,
    )
    await _take_off_bill(session, order, lines, actor=actor)
    next_no = int(
        await session.scalar(
            select(func.max(OrderLine.line_no)).where(OrderLine.order_id == order.id)
        )
        or 0
    )
    for i, pl in enumerate(priced.lines, start=1):
        session.add(
            OrderLine(
                order_id=order.id,
                line_no=next_no + i,
                product_id=pl.product_id,
                barcode=pl.barcode,
                name=pl.name,
                spec=pl.spec,
                list_price_fen=pl.list_price_fen,
                unit_price_fen=pl.unit_price_fen,
                quantity=pl.quantity,
                discount_fen=pl.discount_fen,
                amount_fen=pl.amount_fen,
                price_source=pl.price_source,
            )
        )
    order.total_fen += priced.total_fen
    order.subtotal_fen += priced.subtotal_fen
    order.discount_fen = order.subtotal_fen - order.total_fen
    order.item_count += priced.item_count
    await session.flush()
    if order.stock_booked:
        store = await session.get_one(Store, order.store_id)
        booked = await stock.book_sale(
            session,
            store_id=order.store_id,
            order_id=order.id,
            lines=[(pl.product_id, pl.quantity) for pl in priced.lines],
            allow_negative=store.allow_negative_stock,
            actor=actor,
        )
        if not booked.ok:
            raise Conflict("The substitutes are not in stock either", field="substitutes")
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="note",
        reason="lines_substituted",
        note=note,
        data={"substitutes": {str(k): v for k, v in substitutes.items()}},
    )
    await _after_line_change(session, order, actor=actor, reason="lines_substituted")
