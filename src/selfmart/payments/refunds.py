"""Money the platforms took that the order does not keep: the extra of a double payment and a
payment that succeeded after its order was closed. Both go back through the payment they came
by (`payments.service.refund` reaches the platform); neither is ever kept silently."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.models import Order, Payment, Refund
from selfmart.orders import issues as issue_rules
from selfmart.orders import lifecycle
from selfmart.orders import service as orders
from selfmart.payments import service as payments


async def refund_extra(
    session: AsyncSession, order: Order, payment: Payment, *, actor: Actor
) -> Refund | None:
    """Refund what the order received beyond its total through the payment that brought it
    (a store that refunds double payments automatically); settles the amount_mismatch issue."""
    extra = min(order.paid_fen - order.refunded_fen - order.total_fen, payment.amount_fen)
    if extra <= 0:
        return None
    record = await payments.refund(
        session,
        payment=payment,
        amount_fen=extra,
        reason="double payment: the extra refunded automatically",
        lines=[],
        actor=actor,
    )
    await _recorded(session, order, record, actor, "double_payment_refunded")
    if record.status in ("succeeded", "failed"):
        await orders.apply_refund_result(
            session,
            order,
            record,
            succeeded=record.status == "succeeded",
            refund_txn_id=record.channel_refund_id,
            completed_at=record.completed_at,
            failure_reason=record.failure_reason,
            actor=actor,
        )
    await issue_rules.settle(
        session, order, "amount_mismatch", actor=actor, resolution="refund_difference"
    )
    return record


async def _recorded(
    session: AsyncSession, order: Order, record: Refund, actor: Actor, reason: str
) -> None:
    lifecycle.add_event(
        session,
        order,
        actor=actor,
        kind="refund",
        reason=reason,
        data={
            "payment_id": record.payment_id,
            "refund_id": record.id,
            "amount_fen": record.amount_fen,
            "status": record.status,
        },
    )
    await audit.record(
        session,
        actor,
        "order.refund",
        "order",
        order.id,
        store_id=order.store_id,
        after={"refund_id": record.id, "amount_fen": record.amount_fen, "status": record.status},
        note=record.reason,
    )


async def refund_late(
    session: AsyncSession, order: Order, payment: Payment, *, actor: Actor
) -> Refund:
    """A payment that succeeded after its order was closed or cancelled goes back whole: the
    goods went back on the shelf. The order's own figures do not change."""
    record = await payments.refund(
        session,
        payment=payment,
        amount_fen=payment.amount_fen,
        reason="paid after the order was closed",
        lines=[],
        actor=actor,
    )
    await _recorded(session, order, record, actor, "late_payment_refunded")
    if record.status == "failed":  # the platform refused: a person follows it up
        await orders.apply_refund_result(
            session,
            order,
            record,
            succeeded=False,
            refund_txn_id=None,
            completed_at=None,
            failure_reason=record.failure_reason,
            actor=actor,
        )
    return record
