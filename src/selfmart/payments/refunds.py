"""Refunds reaching the platforms, in the three phases of `payments.twophase`, and the money
the platforms took that an order does not keep.

A refund is recorded pending first (`payments.service.record_refund`, with its
`out_refund_no`); `send` commits that, asks the platform outside any transaction and applies
the answer under the order's lock (`apply_answer`, which the refund query job and callbacks
reach too, so an answer is applied once). Money the order does not keep (the extra of a
double payment, a payment that succeeded after its order was closed) goes back through the
payment it came by, sent once the transaction that found it has committed; it is never kept
silently."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.jobs import runtime
from selfmart.kit import aftercommit
from selfmart.kit.time import utcnow
from selfmart.models import Order, Payment, PaymentAccount, Refund
from selfmart.orders import issues as issue_rules
from selfmart.orders import lifecycle
from selfmart.orders import service as orders
from selfmart.payments import accounts, twophase
from selfmart.payments import service as payments
from selfmart.payments.channels import ChannelRefund

#: What a refund's answer can do to it: applied (it settled now) | unchanged (still pending,
#: or settled before by a callback or the job).
Applied = str


async def send(
    session: AsyncSession, refund_id: int, *, actor: Actor, extra: dict[str, Any] | None = None
) -> Refund:
    """Phases 2 and 3 of a refund recorded pending: returns it as it then stands.

    On a channel without a platform it is answered at once in the caller's transaction. On a
    platform, what the caller wrote is committed first, the platform asked with no lock held,
    and its answer applied in a new transaction under the order's lock (which the caller then
    holds again): succeeded, refused (a refund_failed issue with the platform's words), or
    still pending (processing, or unknown when the platform could not be reached) for the
    refund query job."""
    record = await session.get(Refund, refund_id)
    assert record is not None
    payment = await session.get(Payment, record.payment_id)
    assert payment is not None
    if record.account_id is None:
        answer = await payments.refund_by_channel(session, record, payment, extra)
        order = await session.get(Order, record.order_id)
        assert order is not None
        await apply_answer(session, order, record, answer, actor=actor)
        return record
    account = await session.get(PaymentAccount, record.account_id)
    assert account is not None
    remote = accounts.open_platform(account)
    spec = payments.refund_spec(record, payment, account)
    outcome = await twophase.call_outside(session, lambda: remote.refund(spec))
    order = await twophase.relock_order(session, record.order_id)
    record = await session.get(Refund, refund_id, populate_existing=True)
    assert record is not None
    if outcome.answer is not None:
        answer = outcome.answer
    else:
        assert outcome.error is not None
        answer = ChannelRefund(
            status="unknown", failure_code=outcome.error.code, failure_reason=str(outcome.error)
        )
    await apply_answer(session, order, record, answer, actor=actor)
    return record


async def apply_answer(
    session: AsyncSession, order: Order, record: Refund, answer: ChannelRefund, *, actor: Actor
) -> Applied:
    """Keep what the platform said about `record` (the caller holds the order's lock); a final
    answer settles a refund still pending, once, through the orders service."""
    raw = answer.raw or {}
    if "request" in raw:
        record.raw_request = raw["request"]
    if raw:
        record.raw_response = raw.get("response", raw)
    record.updated_at = utcnow()
    if record.status != "pending":
        return "unchanged"  # a callback or the job settled it first
    record.failure_code = answer.failure_code
    if answer.status not in ("succeeded", "failed"):
        record.channel_refund_id = answer.channel_refund_id or record.channel_refund_id
        record.failure_reason = (answer.failure_reason or "")[:300] or None
        await session.flush()
        return "unchanged"
    await orders.apply_refund_result(
        session,
        order,
        record,
        succeeded=answer.status == "succeeded",
        refund_txn_id=answer.channel_refund_id,
        completed_at=answer.completed_at,
        failure_reason=answer.failure_reason,
        actor=actor,
    )
    return "applied"


#: The job that sends one refund off its caller's path (declared in payments.tasks).
SEND_REFUND_JOB = "payments.send_refund"


def send_after_commit(session: AsyncSession, refund_id: int, *, actor: Actor) -> None:
    """Send a refund recorded in this transaction once it has committed (a platform is never
    asked from inside a transaction another caller still has work in, such as a callback's).
    With the job runtime running it is handed to a job, so the caller (a platform callback,
    answered only after its after-commit work) does not wait for the platform's answer to the
    refund; without one it is sent here. Lost with the process, it is sent by the refund
    query job."""

    async def go() -> None:
        if await runtime.kick(SEND_REFUND_JOB, refund_id):
            return
        await send(session, refund_id, actor=actor)
        await session.commit()
        await aftercommit.run_pending(session)

    aftercommit.on_commit(session, go)


async def refund_extra(
    session: AsyncSession, order: Order, payment: Payment, *, actor: Actor
) -> Refund | None:
    """Refund what the order received beyond its total through the payment that brought it
    (a store that refunds double payments automatically); settles the amount_mismatch issue.
    The refund is recorded now and sent after commit."""
    extra = min(order.paid_fen - order.refunded_fen - order.total_fen, payment.amount_fen)
    if extra <= 0:
        return None
    record = await payments.record_refund(
        session,
        payment=payment,
        amount_fen=extra,
        reason="double payment: the extra refunded automatically",
        lines=[],
        actor=actor,
    )
    await _recorded(session, order, record, actor, "double_payment_refunded")
    await issue_rules.settle(
        session, order, "amount_mismatch", actor=actor, resolution="refund_difference"
    )
    send_after_commit(session, record.id, actor=actor)
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
    goods went back on the shelf. The order's own figures do not change. The refund is
    recorded now and sent after commit (refused: a refund_failed issue for a person)."""
    record = await payments.record_refund(
        session,
        payment=payment,
        amount_fen=payment.amount_fen,
        reason=orders.LATE_PAYMENT_REFUND,
        lines=[],
        actor=actor,
    )
    await _recorded(session, order, record, actor, "late_payment_refunded")
    send_after_commit(session, record.id, actor=actor)
    return record
