"""The orders domain's business logic for the console: reading an order whole, moving it by
hand, money collected by hand, reminders, exports, and closing what was never paid."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from selfmart.audit import service as audit
from selfmart.audit.schemas import AuditFilter
from selfmart.errors import IllegalTransition, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.jobs import service as jobs
from selfmart.kit.money import fen_to_yuan
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import (
    JobRun,
    Order,
    OrderEvent,
    OrderIssue,
    OrderLine,
    Payment,
    Refund,
    RefundLine,
    Store,
    Terminal,
)
from selfmart.notify import service as notify
from selfmart.orders import export, lifecycle, receipts, statemachine, stock
from selfmart.orders import issues as issue_rules
from selfmart.orders.exceptions import refused
from selfmart.orders.schemas import ManualPaymentBody
from selfmart.orders.search import OrderFilters, shown_phone
from selfmart.orders.statemachine import OrderStatus
from selfmart.payments import channels
from selfmart.payments import service as payments

S = OrderStatus
#: The most audit entries the order page shows (newest kept).
MAX_TRAIL = 200


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


async def detail(session: AsyncSession, order: Order, *, actor: Actor) -> dict[str, Any]:
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
    # The audit trail, through the audit domain (scoped to the caller's stores like any search).
    entries, _ = await audit.search(
        session,
        actor,
        AuditFilter(entity_type="order", entity_id=str(order.id)),
        PageParams(page=1, size=MAX_TRAIL),
    )
    trail = sorted(entries, key=lambda e: e.id)
    facts = (await issue_rules.order_facts(session, [order.id]))[order.id]
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
        issues=[issue_rules.present(i, facts, now) for i in order_issues],
        audit=list(trail),
    )
    data["customer_phone"] = shown_phone(order.customer_phone, actor)
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
        from selfmart.members import service as members  # points and tier for the member

        await members.order_changed(session, order, actor=actor)
    if paid != order.total_fen:
        await lifecycle.open_issue(
            session,
            order,
            "amount_mismatch",
            actor=actor,
            detail={"total_fen": order.total_fen, "paid_fen": paid, "payment_id": payment.id},
        )


#: The reason of the refund that gives back a payment which succeeded after its order was
#: closed, cancelled or refunded: money the order never counted.
LATE_PAYMENT_REFUND = "paid after the order was closed"


async def apply_refund_result(
    session: AsyncSession,
    order: Order,
    refund: Refund,
    *,
    succeeded: bool,
    refund_txn_id: str | None,
    completed_at: datetime | None,
    failure_reason: str | None,
    actor: Actor,
) -> None:
    """A pending platform refund settled (its callback or the refund query job); the caller
    holds the order's row lock and has seen the refund still pending. A refund of lines moves
    the order on as an immediate one does; one of money alone adds to what was refunded; a
    refusal opens a refund_failed issue with the platform's reason."""
    from selfmart.orders import refunds

    now = utcnow()
    refund.status = "succeeded" if succeeded else "failed"
    refund.channel_refund_id = refund_txn_id or refund.channel_refund_id
    refund.completed_at = (completed_at or now) if succeeded else None
    refund.failure_reason = None if succeeded else (failure_reason or "refused")[:300]
    refund.updated_at = now
    await session.flush()
    has_lines = await session.scalar(
        select(RefundLine.id).where(RefundLine.refund_id == refund.id).limit(1)
    )
    if has_lines is not None and order.status == S.REFUND_REQUESTED:
        asked = await session.scalar(
            select(OrderEvent.data)
            .where(OrderEvent.order_id == order.id, OrderEvent.to_status == S.REFUND_REQUESTED)
            .order_by(OrderEvent.id.desc())
            .limit(1)
        )
        return_to = (asked or {}).get("return_to") or S.PAID
        await refunds.settle_refund(session, order, refund, actor=actor, return_to=return_to)
        return
    if succeeded:
        # A late payment's money was never counted in the order (payments.refunds.refund_late):
        # giving it back leaves the order's refunded total as it was.
        if refund.reason != LATE_PAYMENT_REFUND and order.status not in (S.CLOSED, S.CANCELLED):
            total = await session.scalar(
                update(Order)
                .where(Order.id == order.id)
                .values(refunded_fen=Order.refunded_fen + refund.amount_fen, updated_at=now)
                .returning(Order.refunded_fen)
                .execution_options(synchronize_session=False)
            )
            set_committed_value(order, "refunded_fen", total)
            from selfmart.members import service as members  # reverse the refund's points

            await members.order_changed(session, order, actor=actor)
        lifecycle.add_event(
            session, order, actor=actor, kind="refund", reason="refund_succeeded",
            data={"refund_id": refund.id, "amount_fen": refund.amount_fen},
        )  # fmt: skip
        return
    await lifecycle.open_issue(
        session,
        order,
        "refund_failed",
        actor=actor,
        detail={"refund_id": refund.id, "reason": refund.failure_reason},
    )


async def mark_payment_failed(
    session: AsyncSession, order: Order, *, actor: Actor, reason: str
) -> OrderIssue:
    """A channel (or the terminal) reported the payment failed: the order waits, an issue is
    raised (automatic re-query first when the channel can be asked). Returns the issue."""
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
    return await lifecycle.open_issue(
        session,
        order,
        "payment_failed",
        actor=actor,
        detail={"reason": reason},
        stage="auto" if queryable else "person",
    )


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
            "pii": actor.can(Perm.ORDER_PII),
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


# ---------------------------------------------------------------- reminders


def _reminder_text(order: Order, owed: int) -> tuple[str, str]:
    link = receipts.receipt_url(order.id)
    amount = fen_to_yuan(owed)
    title = f"订单 {order.order_no} 待支付 ¥{amount}"
    body = f"您在自助店的订单 {order.order_no} 还有 ¥{amount} 未支付，查看订单与付款方式：{link}"
    return title, body


async def _remind_member(
    session: AsyncSession, order: Order, owed: int, *, note: str | None, actor: Actor
) -> None:
    """The reminder as a member message: on the member's own page, and by SMS to their
    mobile when an SMS channel is set up (the page message stands without it)."""
    from selfmart.members import messages as member_messages

    member = await member_messages.order_member(session, order.member_id)
    if member is None:
        raise refused("no_member", "This order is not linked to an active member", "via")
    title, body = _reminder_text(order, owed)
    await member_messages.post(
        session, member.id, kind="order_reminder", title=title, body=body, order_id=order.id
    )
    texted = False
    if member.mobile:
        try:
            await notify.send(
                session, kind="order.payment_reminder", title=title, body=body, channels=[],
                addresses=[("sms", member.mobile)], store_id=order.store_id,
                data={"order_id": order.id, "owed_fen": owed, "member_id": member.id},
            )  # fmt: skip
            texted = True
        except LookupError:
            pass
    lifecycle.add_event(
        session, order, actor=actor, kind="reminder", reason="reminder.member_message",
        note=note,
        data={"owed_fen": owed, "member_no": member.member_no, "sms": texted,
              **({"to": f"***{member.mobile[-4:]}"} if texted and member.mobile else {})},
    )  # fmt: skip


async def remind(
    session: AsyncSession, order: Order, *, via: str | None, note: str | None, actor: Actor
) -> None:
    """Send the customer a reminder with the link to their order (its page takes the payment
    once the platform channels arrive): by SMS to the order's phone, or as a member message
    (the member's own page, and an SMS to their mobile). Sent after commit, through the
    notify outbox."""
    owed = order.total_fen - order.paid_fen
    if owed <= 0 or order.status not in (*statemachine.UNPAID_STATES, *statemachine.PAID_STATES):
        raise refused("nothing_owed", "Nothing is owed on this order")
    channel = via or "sms"
    if channel == "member_message":
        await _remind_member(session, order, owed, note=note, actor=actor)
        return
    if not order.customer_phone:
        raise refused("no_customer_phone", "This order has no customer phone to text", "via")
    title, body = _reminder_text(order, owed)
    try:
        await notify.send(
            session,
            kind="order.payment_reminder",
            title=title,
            body=body,
            channels=[],
            addresses=[(channel, order.customer_phone)],
            store_id=order.store_id,
            data={"order_id": order.id, "owed_fen": owed},
        )
    except LookupError:
        raise refused(
            "channel_not_configured", f"The {channel} channel is not configured", "via"
        ) from None
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="reminder",
        reason=f"reminder.{channel}",
        note=note,
        data={"owed_fen": owed, "to": f"***{order.customer_phone[-4:]}"},
    )


# --- figures other domains read (monitoring, alerts) ---


async def latest_order_at(
    session: AsyncSession, store_ids: Sequence[int] | None = None
) -> dict[int, datetime]:
    """Each store's latest order time (stores without an order are absent)."""
    stmt = select(Order.store_id, func.max(Order.created_at)).group_by(Order.store_id)
    if store_ids is not None:
        stmt = stmt.where(Order.store_id.in_(list(store_ids)))
    return {int(sid): at for sid, at in await session.execute(stmt) if at is not None}


async def count_since(session: AsyncSession, since: datetime) -> int:
    """Orders received at or after `since`, in every store."""
    n = await session.scalar(
        select(func.count()).select_from(Order).where(Order.created_at >= since)
    )
    return int(n or 0)
