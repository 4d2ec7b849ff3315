"""Recording payments and refunds: asks the channel, keeps what it answered.

The orders service decides when an order is paid or refunded; this module talks to the
channels without a platform and writes the money records, in the caller's transaction (a
refund on a platform is sent and settled by `payments.refunds.send`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import AlreadyExists
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.models import Payment, PaymentAccount, Refund, RefundLine
from selfmart.payments import channels
from selfmart.payments.channels import ChannelRefund, PaymentRequest, RefundRequest
from selfmart.payments.platform import RefundSpec


@dataclass(frozen=True, slots=True)
class RefundLineSpec:
    order_line_id: int
    quantity: int
    amount_fen: int
    disposition: str


async def collect(
    session: AsyncSession,
    *,
    order_id: int,
    order_no: str,
    store_id: int,
    channel: str,
    amount_fen: int,
    actor: Actor,
    note: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Payment:
    """Ask `channel` to collect `amount_fen` for the order and record its answer."""
    chan = channels.get(channel)
    answer = await chan.collect(
        PaymentRequest(
            order_id=order_id,
            order_no=order_no,
            store_id=store_id,
            amount_fen=amount_fen,
            extra=dict(extra or {}),
        )
    )
    if answer.channel_txn_id is not None:
        seen = await session.scalar(
            select(Payment.id).where(
                Payment.channel == chan.code, Payment.channel_txn_id == answer.channel_txn_id
            )
        )
        if seen is not None:
            raise AlreadyExists(
                f"Payment reference {answer.channel_txn_id} is already recorded",
                field="reference",
            )
    now = utcnow()
    payment = Payment(
        order_id=order_id,
        store_id=store_id,
        channel=chan.code,
        status=answer.status if answer.status != "unknown" else "pending",
        amount_fen=answer.amount_fen,
        channel_txn_id=answer.channel_txn_id,
        created_at=now,
        succeeded_at=answer.paid_at if answer.status == "succeeded" else None,
        failure_reason=answer.failure_reason,
        note=note,
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
        data={"pay_url": answer.pay_url} if answer.pay_url else {},
    )
    session.add(payment)
    await session.flush()
    return payment


async def record_refund(
    session: AsyncSession,
    *,
    payment: Payment,
    amount_fen: int,
    reason: str,
    lines: Sequence[RefundLineSpec],
    actor: Actor,
    note: str | None = None,
) -> Refund:
    """Phase 1 of a refund (see `payments.twophase`): the pending row, in the caller's
    transaction, under the order's lock. A platform payment's refund gets our number for it
    now (`out_refund_no`: the payment's number, R, its refund count), before the platform
    hears of it, so that sending it again can only ever name the same refund."""
    now = utcnow()
    record = Refund(
        order_id=payment.order_id,
        payment_id=payment.id,
        store_id=payment.store_id,
        channel=payment.channel,
        status="pending",
        amount_fen=amount_fen,
        reason=reason,
        note=note,
        created_at=now,
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
    )
    if payment.account_id is not None:
        count = await session.scalar(
            select(func.count()).select_from(Refund).where(Refund.payment_id == payment.id)
        )
        record.account_id = payment.account_id
        record.out_refund_no = f"{payment.out_trade_no}R{int(count or 0) + 1:02d}"
    session.add(record)
    await session.flush()
    session.add_all(
        RefundLine(
            refund_id=record.id,
            order_line_id=spec.order_line_id,
            quantity=spec.quantity,
            amount_fen=spec.amount_fen,
            disposition=spec.disposition,
        )
        for spec in lines
    )
    await session.flush()
    return record


async def refund_by_channel(
    session: AsyncSession, record: Refund, payment: Payment, extra: dict[str, Any] | None = None
) -> ChannelRefund:
    """A refund on a channel without a platform (manual): answered at once, in the caller's
    transaction; a reference already recorded is refused (409)."""
    chan = channels.get(payment.channel)
    answer = await chan.refund(
        RefundRequest(
            refund_id=record.id,
            payment_channel_txn_id=payment.channel_txn_id,
            payment_amount_fen=payment.amount_fen,
            amount_fen=record.amount_fen,
            reason=record.reason,
            extra=dict(extra or {}),
        )
    )
    if answer.channel_refund_id is not None:
        seen = await session.scalar(
            select(Refund.id).where(
                Refund.channel == record.channel,
                Refund.channel_refund_id == answer.channel_refund_id,
                Refund.id != record.id,
            )
        )
        if seen is not None:
            raise AlreadyExists(
                f"Refund reference {answer.channel_refund_id} is already recorded",
                field="reference",
            )
    return answer


def refund_spec(record: Refund, payment: Payment, account: PaymentAccount) -> RefundSpec:
    """What the platform is asked, the same every time it is sent (first or again)."""
    from selfmart.payments import accounts

    return RefundSpec(
        out_trade_no=payment.out_trade_no or "",
        out_refund_no=record.out_refund_no or "",
        total_fen=payment.amount_fen,
        amount_fen=record.amount_fen,
        reason=record.reason[:80],
        notify_url=accounts.notify_url_of(account),
        transaction_id=payment.channel_txn_id,
        started_at=record.created_at,
    )


async def for_order(session: AsyncSession, order_id: int) -> list[Payment]:
    return list(
        (
            await session.scalars(
                select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)
            )
        ).all()
    )
