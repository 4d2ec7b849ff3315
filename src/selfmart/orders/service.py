"""The orders domain's business logic for the console: reading an order whole, moving it by
hand, recording money collected by hand, refunds by line and quantity."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from selfmart.audit import service as audit
from selfmart.config import get_settings
from selfmart.errors import Conflict, ErrorDetail, IllegalTransition, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.jobs import service as jobs
from selfmart.kit.money import fen_to_yuan
from selfmart.kit.time import utcnow
from selfmart.models import (
    AuditLog,
    JobRun,
    Order,
    OrderEvent,
    OrderIssue,
    OrderLine,
    Payment,
    Refund,
    Store,
    Terminal,
)
from selfmart.notify import service as notify
from selfmart.orders import export, lifecycle, pricing, receipts, statemachine, stock
from selfmart.orders import issues as issue_rules
from selfmart.orders.exceptions import ActionNotAllowed, RefundLimitExceeded
from selfmart.orders.schemas import IntakeLine, ManualPaymentBody, RefundBody
from selfmart.orders.search import OrderFilters
from selfmart.orders.statemachine import OrderStatus
from selfmart.payments import channels
from selfmart.payments import service as payments
from selfmart.payments.service import RefundLineSpec

S = OrderStatus


async def get_for_actor(
    session: AsyncSession, order_id: int, actor: Actor, *, for_update: bool = False
) -> Order:
    """The order, if the actor's stores include its store; otherwise 404 (never 403)."""
    stmt = select(Order).where(Order.id == order_id)
    if actor.store_ids is not None:
        stmt = stmt.where(Order.store_id.in_(actor.store_ids))
    if for_update:
        stmt = stmt.with_for_update()
    order = await session.scalar(stmt)
    if order is None:
        raise NotFound("Order not found", field="order_id")
    return order


async def detail(session: AsyncSession, order: Order) -> dict[str, Any]:
    """Everything the console's order page shows, in a handful of queries."""
    await session.flush()
    store = await session.get_one(Store, order.store_id)
    terminal = await session.get(Terminal, order.terminal_id) if order.terminal_id else None
    lines = (
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)
        )
    ).all()
    pays = await payments.for_order(session, order.id)
    refunds = (
        await session.scalars(
            select(Refund)
            .where(Refund.order_id == order.id)
            .options(selectinload(Refund.lines))
            .order_by(Refund.id)
        )
    ).all()
    events = (
        await session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    ).all()
    order_issues = (
        await session.scalars(
            select(OrderIssue).where(OrderIssue.order_id == order.id).order_by(OrderIssue.id)
        )
    ).all()
    trail = (
        await session.scalars(
            select(AuditLog)
            .where(AuditLog.entity_type == "order", AuditLog.entity_id == str(order.id))
            .order_by(AuditLog.id)
        )
    ).all()
    now = utcnow()
    data = {c.key: getattr(order, c.key) for c in Order.__table__.columns}
    data.update(
        store_code=store.code,
        store_name=store.name,
        store_timezone=store.timezone,
        terminal_code=terminal.code if terminal else None,
        next_statuses=sorted(statemachine.allowed_next(order.status)),
        lines=list(lines),
        payments=pays,
        refunds=list(refunds),
        timeline=list(events),
        issues=[issue_rules.present(i, order, now) for i in order_issues],
        audit=list(trail),
    )
    return data


async def cancel(session: AsyncSession, order: Order, *, reason: str, actor: Actor) -> Order:
    statemachine.check(order.status, S.CANCELLED)
    was_booked = order.stock_booked
    await lifecycle.transition(
        session,
        order,
        S.CANCELLED,
        actor=actor,
        reason="cancelled",
        note=reason,
        audit_action="order.cancel",
    )
    if was_booked:
        await stock.reverse_sale(session, order, actor=actor, reason=f"order cancelled: {reason}")
    await issue_rules.settle_all(session, order, actor=actor, resolution="cancelled")
    return order


async def complete(session: AsyncSession, order: Order, *, note: str | None, actor: Actor) -> Order:
    await lifecycle.transition(
        session,
        order,
        S.COMPLETED,
        actor=actor,
        reason="completed",
        note=note,
        audit_action="order.complete",
    )
    return order


async def record_manual_payment(
    session: AsyncSession, order: Order, body: ManualPaymentBody, *, actor: Actor
) -> Payment:
    """A person collected the money by hand: record it through the manual channel."""
    if order.status not in statemachine.UNPAID_STATES:
        statemachine.check(order.status, S.PAID)
    owed = order.total_fen - order.paid_fen
    amount = body.amount_fen if body.amount_fen is not None else owed
    if amount <= 0:
        raise ValidationFailed("Nothing is owed on this order", field="amount_fen")
    payment = await payments.collect(
        session,
        order_id=order.id,
        order_no=order.order_no,
        store_id=order.store_id,
        channel=body.channel,
        amount_fen=amount,
        actor=actor,
        note=body.note,
        extra={"reference": body.reference} if body.reference else {},
    )
    await audit.record(
        session,
        actor,
        "payment.record",
        "order",
        order.id,
        store_id=order.store_id,
        after={
            "payment_id": payment.id,
            "channel": payment.channel,
            "amount_fen": payment.amount_fen,
            "reference": payment.channel_txn_id,
        },
        note=body.note,
    )
    await apply_payment(session, order, payment, actor=actor, reason="manual_payment")
    return payment


async def apply_payment(
    session: AsyncSession, order: Order, payment: Payment, *, actor: Actor, reason: str
) -> None:
    """What a channel's answer means for the order (the payment callbacks will call this).

    Succeeded money is added to the order; an order whose money covers its total is paid; an
    amount that is not the total raises an amount-mismatch issue for a person."""
    if payment.status == "failed":
        await mark_payment_failed(
            session, order, actor=actor, reason=payment.failure_reason or "payment_failed"
        )
        return
    if payment.status != "succeeded":
        return
    paid = await session.scalar(
        update(Order)
        .where(Order.id == order.id)
        .values(
            paid_fen=Order.paid_fen + payment.amount_fen,
            payment_method=payment.channel,
            updated_at=utcnow(),
        )
        .returning(Order.paid_fen)
        .execution_options(synchronize_session=False)
    )
    assert paid is not None
    set_committed_value(order, "paid_fen", paid)
    set_committed_value(order, "payment_method", payment.channel)
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="payment",
        reason=reason,
        data={
            "payment_id": payment.id,
            "channel": payment.channel,
            "amount_fen": payment.amount_fen,
        },
    )
    if order.status in statemachine.UNPAID_STATES and paid >= order.total_fen:
        await lifecycle.transition(
            session,
            order,
            S.PAID,
            actor=actor,
            reason=reason,
            data={"payment_id": payment.id},
            audit_action="order.pay",
        )
        await issue_rules.settle(session, order, "payment_failed", actor=actor, resolution="paid")
    if paid != order.total_fen:
        await lifecycle.open_issue(
            session,
            order,
            "amount_mismatch",
            actor=actor,
            detail={"total_fen": order.total_fen, "paid_fen": paid, "payment_id": payment.id},
        )


async def mark_payment_failed(
    session: AsyncSession, order: Order, *, actor: Actor, reason: str
) -> None:
    """A channel reported the payment failed: the order waits, an issue is raised (automatic
    re-query first when the channel can be asked)."""
    if order.status == S.AWAITING_PAYMENT:
        await lifecycle.transition(
            session,
            order,
            S.PAYMENT_FAILED,
            actor=actor,
            reason=reason,
            audit_action="order.payment_failed",
        )
    queryable = order.payment_method is not None and channels.get(order.payment_method).queryable
    await lifecycle.open_issue(
        session,
        order,
        "payment_failed",
        actor=actor,
        detail={"reason": reason},
        stage="auto" if queryable else "person",
    )


# ---------------------------------------------------------------- refunds


def _refundable_units(line: OrderLine) -> int:
    return line.quantity - line.cancelled_qty - line.refunded_qty


def _line_refund_amount(line: OrderLine, quantity: int) -> int:
    """The line's money for `quantity` units: pro rata, the last unit takes the remainder, so
    refunding a line in parts adds up to exactly what was charged."""
    units = line.quantity - line.cancelled_qty
    charged = line.amount_fen - line.cancelled_fen
    if line.refunded_qty + quantity == units:
        return charged - line.refunded_fen
    return charged * quantity // units


async def refund(session: AsyncSession, order: Order, body: RefundBody, *, actor: Actor) -> Refund:
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
            (line, _refundable_units(line), body.disposition)
            for line in lines.values()
            if _refundable_units(line) > 0
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
        left = _refundable_units(line)
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
    if actor.refund_limit_fen is not None and amount > actor.refund_limit_fen:
        raise RefundLimitExceeded(
            f"This refund of {amount} fen is above your limit of {actor.refund_limit_fen} fen",
            field="amount_fen",
            limit_fen=actor.refund_limit_fen,
        )
    refundable = order.paid_fen - order.refunded_fen
    if amount > refundable:
        raise Conflict(
            f"Only {refundable} fen of this order can still be refunded", field="amount_fen"
        )
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

    record = await payments.refund(
        session,
        payment=payment,
        amount_fen=amount,
        reason=body.reason,
        lines=specs,
        actor=actor,
        note=body.note,
        extra={"reference": body.reference} if body.reference else {},
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
    await settle_refund(session, order, record, actor=actor, return_to=before)
    return record


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
    if actor.refund_limit_fen is not None and amount > actor.refund_limit_fen:
        raise RefundLimitExceeded(
            f"This refund of {amount} fen is above your limit of {actor.refund_limit_fen} fen",
            field="amount_fen",
            limit_fen=actor.refund_limit_fen,
        )
    payment = await _refund_source(session, order, amount)
    record = await payments.refund(
        session,
        payment=payment,
        amount_fen=amount,
        reason=reason,
        lines=[],
        actor=actor,
        note=note,
        extra={"reference": reference} if reference else {},
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
    if record.status == "succeeded":
        total = await session.scalar(
            update(Order)
            .where(Order.id == order.id)
            .values(refunded_fen=Order.refunded_fen + amount, updated_at=utcnow())
            .returning(Order.refunded_fen)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(order, "refunded_fen", total)
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="refund",
        reason="refund_difference",
        note=note,
        data={"refund_id": record.id, "amount_fen": amount, "status": record.status},
    )
    return record


# ---------------------------------------------------------------- jobs


async def close_expired(
    session: AsyncSession, *, actor: Actor, now: datetime | None = None, limit: int = 200
) -> list[int]:
    """Close unpaid orders whose payment window has passed; their goods go back into stock.

    Orders are taken oldest deadline first; on PostgreSQL rows another worker holds are skipped,
    and an order paid meanwhile simply fails its conditional move and is left alone."""
    now = now or utcnow()
    stmt = (
        select(Order)
        .where(
            Order.status.in_([s.value for s in statemachine.UNPAID_STATES]),
            Order.expires_at <= now,
        )
        .order_by(Order.expires_at, Order.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    closed: list[int] = []
    for order in (await session.scalars(stmt)).all():
        try:
            async with session.begin_nested():
                was_booked = order.stock_booked
                await lifecycle.transition(
                    session,
                    order,
                    S.CLOSED,
                    actor=actor,
                    reason="payment_timeout",
                    data={"expired_at": order.expires_at.isoformat() if order.expires_at else None},
                    audit_action="order.close_unpaid",
                )
                if was_booked:
                    await stock.reverse_sale(
                        session, order, actor=actor, reason="order closed: payment timed out"
                    )
                await issue_rules.settle_all(
                    session, order, actor=actor, resolution="closed_unpaid"
                )
        except IllegalTransition:
            continue  # paid or cancelled while we looked
        closed.append(order.id)
    return closed


# ---------------------------------------------------------------- large exports


async def start_export(
    session: AsyncSession, filters: OrderFilters, *, lang: str, actor: Actor
) -> JobRun:
    """Queue the export of a search as a job with progress (for searches too large to wait
    for); the console polls GET /jobs/{id} and then downloads the file."""
    run = await jobs.start_job(
        session,
        kind="orders.export",
        created_by=actor,
        params={
            "filters": export.filters_to_params(filters),
            "store_ids": None if actor.store_ids is None else sorted(actor.store_ids),
            "lang": lang,
            "actor_name": actor.name,
        },
    )
    await audit.record(
        session,
        actor,
        "order.export",
        "job",
        run.id,
        after={"filters": export.filters_to_params(filters), "lang": lang},
    )
    return run


async def export_job(session: AsyncSession, job_id: int, *, actor: Actor) -> JobRun:
    """The actor's own export job (a super admin sees every one); 404 otherwise."""
    run = await jobs.get_job(session, actor, job_id)
    if run.kind != "orders.export":
        raise NotFound("No order export with this id", field="job_id")
    return run


async def export_file(session: AsyncSession, job_id: int, *, media_dir: Path, actor: Actor) -> Path:
    """The finished export file of the actor's own export job (404 otherwise)."""
    run = await export_job(session, job_id, actor=actor)
    path = export.export_path(media_dir, run.id)
    if run.status != "succeeded" or not path.is_file():
        raise NotFound("No finished order export with this id", field="job_id")
    return path


# ---------------------------------------------------------------- changing lines


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


async def cancel_lines(
    session: AsyncSession, order: Order, line_ids: list[int], *, note: str | None, actor: Actor
) -> None:
    """Take lines off an order whose goods were not there: off the bill before payment, or
    refunded (as not resellable) after it."""
    lines = await _order_lines(session, order, line_ids)
    if order.status in statemachine.REFUNDABLE_STATES:
        from selfmart.orders.schemas import RefundLineIn

        wanted = [
            RefundLineIn(line_id=ln.id, quantity=_refundable_units(ln), disposition="write_off")
            for ln in lines
            if _refundable_units(ln) > 0
        ]
        if not wanted:
            raise Conflict("Those lines are already refunded", field="line_ids")
        await refund(
            session,
            order,
            RefundBody(lines=wanted, reason=note or "lines cancelled: not on the shelf"),
            actor=actor,
        )
        return
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
    priced = await pricing.price(
        session,
        store_id=order.store_id,
        lines=[
            IntakeLine(product_id=substitutes[ln.id], quantity=units)
            for ln, units in replacing
            if units > 0
        ],
        member=order.member_no is not None,
        terminal_total_fen=None,
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


# ---------------------------------------------------------------- reminders


async def remind(
    session: AsyncSession, order: Order, *, via: str | None, note: str | None, actor: Actor
) -> None:
    """Send the customer a reminder with the link to their order (its page takes the payment
    once the platform channels arrive). Sent after commit, through the notify outbox."""
    owed = order.total_fen - order.paid_fen
    if owed <= 0 or order.status not in (*statemachine.UNPAID_STATES, *statemachine.PAID_STATES):
        raise ActionNotAllowed("Nothing is owed on this order", field="action")
    channel = via or "sms"
    if channel == "member_message":
        raise ActionNotAllowed(
            "Member messages arrive with the members domain; use sms", field="via"
        )
    if not order.customer_phone:
        raise ActionNotAllowed("This order has no customer phone to text", field="via")
    link = receipts.receipt_url(order.id)
    amount = fen_to_yuan(owed)
    try:
        await notify.send(
            session,
            kind="order.payment_reminder",
            title=f"订单 {order.order_no} 待支付 ¥{amount}",
            body=f"您在自助店的订单 {order.order_no} 还有 ¥{amount} 未支付，请点击完成支付：{link}",
            channels=[],
            addresses=[(channel, order.customer_phone)],
            store_id=order.store_id,
            data={"order_id": order.id, "owed_fen": owed},
        )
    except LookupError:
        raise ActionNotAllowed(f"The {channel} channel is not configured", field="via") from None
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="reminder",
        reason=f"reminder.{channel}",
        note=note,
        data={"owed_fen": owed, "to": f"***{order.customer_phone[-4:]}"},
    )
