"""Refunds: by line and quantity (or in full) or of a sum not tied to lines, within the
refunder's limit, through the channel the money came in by; the order follows."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from selfmart.audit import service as audit
from selfmart.errors import Conflict, ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.money import fen_to_yuan
from selfmart.kit.time import utcnow
from selfmart.models import (
    Order,
    OrderLine,
    Payment,
    Refund,
)
from selfmart.orders import lifecycle, statemachine, stock
from selfmart.orders.exceptions import RefundInProgress, RefundLimitExceeded
from selfmart.orders.schemas import RefundBody
from selfmart.orders.statemachine import OrderStatus
from selfmart.payments import refunds as payment_refunds
from selfmart.payments import service as payments
from selfmart.payments.service import RefundLineSpec

S = OrderStatus


def refundable_units(line: OrderLine) -> int:
    return line.quantity - line.cancelled_qty - line.refunded_qty


def _line_refund_amount(line: OrderLine, quantity: int) -> int:
    """The line's money for `quantity` units: pro rata, the last unit takes the remainder, so
    refunding a line in parts adds up to exactly what was charged."""
    units = line.quantity - line.cancelled_qty
    charged = line.amount_fen - line.cancelled_fen
    if line.refunded_qty + quantity == units:
        return charged - line.refunded_fen
    return charged * quantity // units


async def plan(
    session: AsyncSession, order: Order, body: RefundBody
) -> tuple[list[RefundLineSpec], int]:
    """What `body` would refund from this order now, line by line, and the sum (checked:
    every line on the order, no more units than are left; nothing is changed)."""
    if order.status == S.REFUND_REQUESTED:
        # several refunds per payment, one at a time: the one in flight settles first
        raise RefundInProgress(field="order_id")
    if order.status not in statemachine.REFUNDABLE_STATES:
        statemachine.check(order.status, S.REFUND_REQUESTED)
    lines = {
        line.id: line
        for line in (
            await session.scalars(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
            )
        ).all()
    }
    wanted: list[tuple[OrderLine, int, str]] = []
    if body.full:
        wanted = [
            (line, refundable_units(line), body.disposition)
            for line in lines.values()
            if refundable_units(line) > 0
        ]
        if not wanted:
            raise Conflict("Every line of this order is already refunded", field="full")
    problems: list[ErrorDetail] = []
    for i, item in enumerate(body.lines):
        line = lines.get(item.line_id)
        if line is None:
            problems.append(
                ErrorDetail(
                    field=f"lines.{i}.line_id",
                    reason="not_found",
                    message=f"Line {item.line_id} is not on this order",
                )
            )
            continue
        left = refundable_units(line)
        if item.quantity > left:
            problems.append(
                ErrorDetail(
                    field=f"lines.{i}.quantity",
                    reason="exceeds_refundable",
                    message=f"Only {left} unit(s) of line {line.line_no} can still be refunded",
                )
            )
            continue
        wanted.append((line, item.quantity, item.disposition))
    if problems:
        raise ValidationFailed("Some refund lines are not valid", details=problems)

    specs = [
        RefundLineSpec(
            order_line_id=line.id,
            quantity=qty,
            amount_fen=_line_refund_amount(line, qty),
            disposition=disposition,
        )
        for line, qty, disposition in wanted
    ]
    amount = sum(s.amount_fen for s in specs)
    refundable = order.paid_fen - order.refunded_fen
    if amount > refundable:
        raise Conflict(
            f"Only {fen_to_yuan(refundable)} yuan of this order can still be refunded",
            field="amount_fen",
        )
    return specs, amount


def check_limit(actor: Actor, amount: int) -> None:
    """403 refund_limit_exceeded when `amount` is above the actor's refund limit (the console
    then offers to send the refund for approval)."""
    limit = actor.refund_limit_fen
    if limit is not None and amount > limit:
        raise RefundLimitExceeded(
            f"This refund of {fen_to_yuan(amount)} yuan is above your limit of "
            f"{fen_to_yuan(limit)} yuan; send it for approval",
            field="amount_fen",
            limit_fen=limit,
        )


async def refund(session: AsyncSession, order: Order, body: RefundBody, *, actor: Actor) -> Refund:
    specs, amount = await plan(session, order, body)
    check_limit(actor, amount)
    payment = await _refund_source(session, order, amount)

    before = order.status
    await lifecycle.transition(
        session,
        order,
        S.REFUND_REQUESTED,
        actor=actor,
        reason="refund_requested",
        note=body.reason,
        data={"amount_fen": amount, "return_to": before},
        audit_action="order.refund_request",
    )
    # Reserve the units first: a concurrent refund of the same units finds them gone.
    for spec in specs:
        res = await session.execute(
            update(OrderLine)
            .where(
                OrderLine.id == spec.order_line_id,
                OrderLine.refunded_qty + spec.quantity
                <= OrderLine.quantity - OrderLine.cancelled_qty,
            )
            .values(
                refunded_qty=OrderLine.refunded_qty + spec.quantity,
                refunded_fen=OrderLine.refunded_fen + spec.amount_fen,
            )
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("These units were refunded meanwhile", field="lines")

    record = await payments.record_refund(
        session,
        payment=payment,
        amount_fen=amount,
        reason=body.reason,
        lines=specs,
        actor=actor,
        note=body.note,
    )
    await audit.record(
        session,
        actor,
        "order.refund",
        "order",
        order.id,
        store_id=order.store_id,
        after={
            "refund_id": record.id,
            "amount_fen": amount,
            "status": record.status,
            "lines": [
                {"line_id": s.order_line_id, "quantity": s.quantity, "disposition": s.disposition}
                for s in specs
            ],
        },
        note=body.reason,
    )
    await stock.take_back(session, order, specs, actor=actor, reason=body.reason)
    # Phases 2 and 3: the channel's answer moves the order on (orders.apply_refund_result).
    return await payment_refunds.send(
        session,
        record.id,
        actor=actor,
        extra={"reference": body.reference} if body.reference else {},
    )


async def _refund_source(session: AsyncSession, order: Order, amount: int) -> Payment:
    """The payment the money goes back through: the latest that still holds enough."""
    pays = [p for p in await payments.for_order(session, order.id) if p.status == "succeeded"]
    if not pays:
        raise Conflict("This order has no successful payment to refund", field="order_id")
    refunded: dict[int, int] = {}
    for r in (
        await session.execute(
            select(Refund.payment_id, Refund.amount_fen).where(
                Refund.order_id == order.id, Refund.status.in_(("pending", "succeeded"))
            )
        )
    ).all():
        refunded[r.payment_id] = refunded.get(r.payment_id, 0) + r.amount_fen
    for p in reversed(pays):
        if p.amount_fen - refunded.get(p.id, 0) >= amount:
            return p
    raise Conflict(
        "No single payment of this order covers the refund; refund it in smaller parts",
        field="amount_fen",
    )


async def settle_refund(
    session: AsyncSession, order: Order, record: Refund, *, actor: Actor, return_to: str
) -> None:
    """Move the order on from refund_requested by what the channel said about `record`.

    Pending refunds wait for the platform; the payments issue's callbacks call this again."""
    if record.status == "pending":
        return
    if record.status == "succeeded":
        total = await session.scalar(
            update(Order)
            .where(Order.id == order.id)
            .values(refunded_fen=Order.refunded_fen + record.amount_fen, updated_at=utcnow())
            .returning(Order.refunded_fen)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(order, "refunded_fen", total)
        left = await session.scalar(
            select(OrderLine.id)
            .where(
                OrderLine.order_id == order.id,
                OrderLine.refunded_qty < OrderLine.quantity - OrderLine.cancelled_qty,
            )
            .limit(1)
        )
        to = S.PARTIALLY_REFUNDED if left is not None else S.REFUNDED
        await lifecycle.transition(
            session,
            order,
            to,
            actor=actor,
            reason="refund_succeeded",
            data={"refund_id": record.id, "amount_fen": record.amount_fen},
            audit_action="order.refund_settle",
        )
        from selfmart.members import service as members  # reverse the refund's points

        await members.order_changed(session, order, actor=actor)
        return
    # Failed: give the units back and return the order to where it stood.
    for line in (
        (
            await session.scalars(
                select(Refund).where(Refund.id == record.id).options(selectinload(Refund.lines))
            )
        )
        .one()
        .lines
    ):
        await session.execute(
            update(OrderLine)
            .where(OrderLine.id == line.order_line_id)
            .values(
                refunded_qty=OrderLine.refunded_qty - line.quantity,
                refunded_fen=OrderLine.refunded_fen - line.amount_fen,
            )
            .execution_options(synchronize_session=False)
        )
    await lifecycle.transition(
        session,
        order,
        S(return_to),
        actor=actor,
        reason="refund_failed",
        note=record.failure_reason,
        data={"refund_id": record.id},
        audit_action="order.refund_failed",
    )
    await lifecycle.open_issue(
        session,
        order,
        "refund_failed",
        actor=actor,
        detail={"refund_id": record.id, "reason": record.failure_reason},
    )


async def refund_amount(
    session: AsyncSession,
    order: Order,
    amount: int,
    *,
    reason: str,
    note: str | None,
    reference: str | None,
    actor: Actor,
) -> Refund:
    """Give back money that is not tied to lines (an overpayment, a price difference).

    The goods stay sold, so the order keeps its status; the refund is on its timeline."""
    check_limit(actor, amount)
    payment = await _refund_source(session, order, amount)
    record = await payments.record_refund(
        session,
        payment=payment,
        amount_fen=amount,
        reason=reason,
        lines=[],
        actor=actor,
        note=note,
    )
    await audit.record(
        session,
        actor,
        "order.refund",
        "order",
        order.id,
        store_id=order.store_id,
        after={"refund_id": record.id, "amount_fen": amount, "status": record.status},
        note=reason,
    )
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="refund",
        reason="refund_difference",
        note=note,
        data={"refund_id": record.id, "amount_fen": amount, "status": record.status},
    )
    # Phases 2 and 3: a refund that succeeds adds to what the order refunded
    # (orders.apply_refund_result); one refused opens a refund_failed issue.
    return await payment_refunds.send(
        session,
        record.id,
        actor=actor,
        extra={"reference": reference} if reference else {},
    )
