"""Platform callbacks (payment and refund notifications): every one is recorded, verified or
not, with what we made of it and why.

A callback is believed only once its signature verifies (the platform package's
`parse_notification`) and its merchant id, app id, our number and amount match ours. It is
applied under the order's row lock and only moves a payment or refund out of `pending`, so ten
copies of one notification, in any order and at once, change the order once. An amount that
is not ours opens an amount_mismatch issue and pays nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import Payment, PaymentAccount, PaymentCallback, Refund
from selfmart.orders import service as orders
from selfmart.payments import attempts, callbacks_hot
from selfmart.payments.callbacks_hot import BODY_LIMIT, callback_actor, kept_headers
from selfmart.payments.channels import ChannelPayment
from selfmart.payments.platform import (
    Notification,
    NotificationAnswer,
    NotificationRejected,
    PlatformAccount,
)


def _unknown_account_answer() -> NotificationAnswer:
    body = json.dumps({"code": "FAIL", "message": "unknown merchant account"}).encode()
    return NotificationAnswer(status_code=404, content_type="application/json", body=body)


async def receive(
    session: AsyncSession,
    *,
    channel: str,
    account_id: int,
    headers: Mapping[str, str],
    body: bytes,
    try_hot: bool = True,
) -> NotificationAnswer:
    """Record, verify, match and apply one callback; the answer the platform expects.

    The common case (a pending attempt paid in full) takes the hot path (`callbacks_hot`);
    anything else, or a common case that changed meanwhile, this module's full path. The
    record is added once its outcome is known: one INSERT, not an INSERT (forced by the
    first statement that autoflushes) and an UPDATE of its outcome. `try_hot` False: straight
    to the full path."""
    if try_hot:  # (not when the fast lane tried it already: payments.fastlane)
        answer = await callbacks_hot.try_apply(
            session, channel=channel, account_id=account_id, headers=headers, body=body
        )
        if answer is not None:
            return answer
    record = PaymentCallback(
        channel=channel[:16],
        received_at=utcnow(),
        verified=False,
        outcome="rejected",
        headers=kept_headers(headers),
        body=body[:BODY_LIMIT].decode("utf-8", "replace"),
        decoded={},
    )
    answer = await _receive(session, record, channel, account_id, headers, body)
    session.add(record)
    await session.flush()
    return answer


async def _receive(
    session: AsyncSession,
    record: PaymentCallback,
    channel: str,
    account_id: int,
    headers: Mapping[str, str],
    body: bytes,
) -> NotificationAnswer:
    account = await session.get(PaymentAccount, account_id) if account_id <= 2**31 - 1 else None
    if account is None or account.channel != channel:
        callbacks_hot.forget(account_id)
        record.reason = "no such merchant account for this channel"
        await session.flush()
        return _unknown_account_answer()
    record.account_id = account.id
    # The hot path's kept account, renewed here if the row changed since it was opened.
    remote = callbacks_hot.opened_for(account)
    try:
        note = remote.parse_notification(headers, body)
    except NotificationRejected as exc:
        record.reason = f"{exc.code}: {exc}"[:300]
        await session.flush()
        return remote.answer_notification(False, str(exc)[:100])
    record.verified = True
    record.kind = note.kind
    record.notification_id = note.notification_id
    record.out_trade_no = note.out_trade_no[:64] or None
    record.out_refund_no = (note.out_refund_no or "")[:64] or None
    record.transaction_id = (note.transaction_id or "")[:64] or None
    record.status = note.status[:16]
    record.amount_fen = note.amount_fen
    record.decoded = dict(note.raw)
    if note.merchant_id != account.merchant_id or (
        account.app_id and note.app_id and note.app_id != account.app_id
    ):
        record.reason = "the merchant id or app id is not this account's"
        await session.flush()
        return remote.answer_notification(False, "merchant mismatch")
    if note.kind == "refund":
        return await _refund(session, record, account, remote, note)
    return await _payment(session, record, account, remote, note)


async def _payment(
    session: AsyncSession,
    record: PaymentCallback,
    account: PaymentAccount,
    remote: PlatformAccount,
    note: Notification,
) -> NotificationAnswer:
    found = (
        await session.execute(
            select(Payment.id, Payment.order_id).where(
                Payment.account_id == account.id, Payment.out_trade_no == note.out_trade_no
            )
        )
    ).first()
    if found is None:
        record.outcome, record.reason = "unmatched", "no payment of ours has this number"
        await session.flush()
        return remote.answer_notification(False, "unknown out_trade_no")
    payment_id, order_id = found
    order = await attempts.lock_order(session, order_id)
    payment = await session.get(Payment, payment_id, populate_existing=True)
    assert payment is not None
    record.payment_id, record.order_id = payment.id, order.id
    actor = callback_actor(account.channel)
    answer = ChannelPayment(
        status="succeeded" if note.status == "succeeded" else _status(note.status),
        amount_fen=note.amount_fen,
        channel_txn_id=note.transaction_id,
        paid_at=note.occurred_at,
        raw={"response": dict(note.raw)},
    )
    if note.status == "succeeded":
        outcome = await attempts.settle_success(
            session,
            order,
            payment,
            amount_fen=note.amount_fen,
            transaction_id=note.transaction_id,
            paid_at=note.occurred_at,
            actor=actor,
            reason="payment_callback",
        )
        record.outcome = outcome
        if outcome == "mismatch":
            record.reason = f"amount {note.amount_fen} is not the {payment.amount_fen} we asked"
    elif note.status in ("failed", "closed"):
        before = payment.status
        await attempts.apply_answer(
            session, order, payment, answer, actor=actor, reason="payment_callback"
        )
        record.outcome = "applied" if payment.status != before else "duplicate"
    else:
        record.outcome, record.reason = "ignored", f"status {note.status} changes nothing"
    await session.flush()
    return remote.answer_notification(True)


async def _expected_refund_amount(
    session: AsyncSession, refund: Refund, note: Notification
) -> tuple[int, int]:
    """The amounts a notification of `refund` may name. Most platforms name the refund's own
    amount; Alipay names everything refunded on the payment so far: at least what had
    succeeded before this refund plus this one, at most every refund of it not failed."""
    if not note.cumulative_refund:
        return refund.amount_fen, refund.amount_fen
    others = (
        await session.execute(
            select(Refund.id, Refund.status, Refund.amount_fen).where(
                Refund.payment_id == refund.payment_id, Refund.id != refund.id
            )
        )
    ).all()
    before = sum(r.amount_fen for r in others if r.status == "succeeded" and r.id < refund.id)
    live = sum(r.amount_fen for r in others if r.status != "failed")
    return refund.amount_fen + before, refund.amount_fen + live


def _status(status: str) -> Any:
    return status if status in ("pending", "failed", "succeeded") else "failed"


async def _refund(
    session: AsyncSession,
    record: PaymentCallback,
    account: PaymentAccount,
    remote: PlatformAccount,
    note: Notification,
) -> NotificationAnswer:
    found = (
        await session.execute(
            select(Refund.id, Refund.order_id).where(
                Refund.account_id == account.id, Refund.out_refund_no == note.out_refund_no
            )
        )
    ).first()
    if found is None:
        record.outcome, record.reason = "unmatched", "no refund of ours has this number"
        await session.flush()
        return remote.answer_notification(False, "unknown out_refund_no")
    refund_id, order_id = found
    order = await attempts.lock_order(session, order_id)
    refund = await session.get(Refund, refund_id, populate_existing=True)
    assert refund is not None
    record.refund_id, record.payment_id, record.order_id = refund.id, refund.payment_id, order.id
    low, high = await _expected_refund_amount(session, refund, note)
    if note.status == "succeeded" and not low <= note.amount_fen <= high:
        record.outcome = "mismatch"
        asked = f"{low}" if low == high else f"{low}-{high}"
        record.reason = f"refund amount {note.amount_fen} is not the {asked} asked"
    elif refund.status != "pending" or note.status not in ("succeeded", "failed"):
        record.outcome = "duplicate" if refund.status != "pending" else "ignored"
    else:
        await orders.apply_refund_result(
            session,
            order,
            refund,
            succeeded=note.status == "succeeded",
            refund_txn_id=note.refund_id,
            completed_at=note.occurred_at,
            failure_reason=(
                None
                if note.status == "succeeded"
                else (note.failure_reason or f"refused by the platform ({note.status})")
            ),
            actor=callback_actor(account.channel),
        )
        record.outcome = "applied"
    await session.flush()
    return remote.answer_notification(True)
