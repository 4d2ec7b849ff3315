"""Recording payments and refunds: asks the channel, keeps what it answered.

The orders service decides when an order is paid or refunded; this module only talks to the
channel and writes the money records, in the caller's transaction.
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
from selfmart.payments.platform import PlatformError, RefundSpec


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


async def refund(
    session: AsyncSession,
    *,
    payment: Payment,
    amount_fen: int,
    reason: str,
    lines: Sequence[RefundLineSpec],
    actor: Actor,
    note: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Refund:
    """Refund through the channel `payment` came in by; returns the refund as it stands."""
    # Platform payments go back through their merchant account (channels.get knows only
    # the channels without one, like manual).
    chan = None if payment.account_id is not None else channels.get(payment.channel)
    code = payment.channel
    now = utcnow()
    record = Refund(
        order_id=payment.order_id,
        payment_id=payment.id,
        store_id=payment.store_id,
        channel=code,
        status="pending",
        amount_fen=amount_fen,
        reason=reason,
        note=note,
        created_at=now,
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
    )
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
    if chan is None:
        answer = await _platform_refund(session, payment, record, amount_fen, reason)
    else:
        answer = await chan.refund(
            RefundRequest(
                refund_id=record.id,
                payment_channel_txn_id=payment.channel_txn_id,
                payment_amount_fen=payment.amount_fen,
                amount_fen=amount_fen,
                reason=reason,
                extra=dict(extra or {}),
            )
        )
    if answer.channel_refund_id is not None:
        seen = await session.scalar(
            select(Refund.id).where(
                Refund.channel == code,
                Refund.channel_refund_id == answer.channel_refund_id,
                Refund.id != record.id,
            )
        )
        if seen is not None:
            raise AlreadyExists(
                f"Refund reference {answer.channel_refund_id} is already recorded",
                field="reference",
            )
    record.status = answer.status if answer.status != "unknown" else "pending"
    record.channel_refund_id = answer.channel_refund_id
    record.completed_at = answer.completed_at if answer.status == "succeeded" else None
    record.failure_reason = answer.failure_reason
    record.failure_code = answer.failure_code
    record.updated_at = utcnow()
    raw = answer.raw or {}
    if "request" in raw:
        record.raw_request = raw["request"]
    if raw:
        record.raw_response = raw.get("response", raw)
    await session.flush()
    return record


async def _platform_refund(
    session: AsyncSession, payment: Payment, record: Refund, amount_fen: int, reason: str
) -> ChannelRefund:
    """Give money back through the merchant account and payment it came in by. An unknown
    outcome (the platform unreachable) leaves the refund pending for the refund query job."""
    from selfmart.payments import accounts

    account = await session.get(PaymentAccount, payment.account_id)
    assert account is not None
    count = await session.scalar(
        select(func.count()).select_from(Refund).where(Refund.payment_id == payment.id)
    )
    record.account_id = account.id
    record.out_refund_no = f"{payment.out_trade_no}R{int(count or 1):02d}"
    await session.flush()
    spec = RefundSpec(
        out_trade_no=payment.out_trade_no or "",
        out_refund_no=record.out_refund_no,
        total_fen=payment.amount_fen,
        amount_fen=amount_fen,
        reason=reason[:80],
        notify_url=accounts.notify_url_of(account),
        transaction_id=payment.channel_txn_id,
        started_at=record.created_at,
    )
    try:
        return await accounts.open_platform(account).refund(spec)
    except PlatformError as exc:
        return ChannelRefund(status="unknown", failure_code=exc.code, failure_reason=str(exc))


async def for_order(session: AsyncSession, order_id: int) -> list[Payment]:
    return list(
        (
            await session.scalars(
                select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)
            )
        ).all()
    )
