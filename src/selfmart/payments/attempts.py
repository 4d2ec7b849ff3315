"""Payment attempts on the platforms: start one for an order, apply what the platform says.

Every attempt is a `Payment` row (channel, account, mode, our `out_trade_no`, the terminal's
attempt id, amount, status, the platform's transaction id, times, and the last exchange with
secrets removed). An attempt goes through the three phases of `payments.twophase`: the row
is committed BEFORE the platform is called, so whatever happens to this process afterwards
the attempt can be found and queried: nothing charged is lost. The platform is called with no
lock held; its answer is applied under the order's row lock, where a callback that arrived
meanwhile may already have applied it (then nothing changes twice).

Statuses: pending (waiting: a QR shown, a phone page open, or the customer entering a password
— `paying`), succeeded, failed, closed (closed or reversed unpaid on the platform).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow
from selfmart.models import Order, Payment, PaymentAccount, Store
from selfmart.orders import lifecycle, statemachine
from selfmart.orders import service as orders
from selfmart.orders.lookup import OrderNotFound
from selfmart.orders.statemachine import OrderStatus
from selfmart.payments import accounts, channels, refunds, twophase
from selfmart.payments.channels import ChannelPayment
from selfmart.payments.exceptions import (
    AttemptConflict,
    ChannelNotOffered,
    NothingOwed,
    PaymentInProgress,
)
from selfmart.payments.platform import PayMode, PayRequest, PlatformError

S = OrderStatus
#: How long a payment-code attempt may stay USERPAYING before it is reversed.
USER_PAYING_LIMIT = timedelta(minutes=2)
#: How long a QR / phone-page attempt stays payable (never past the order's own deadline).
QR_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class PayCommand:
    attempt_id: str
    channel: str
    mode: PayMode
    auth_code: str | None = None
    client_ip: str = "127.0.0.1"
    return_url: str | None = None
    payer_id: str | None = None


def state_of(payment: Payment) -> str:
    """The attempt as a terminal reads it: paid | paying | waiting | failed | closed."""
    if payment.status == "succeeded":
        return "paid"
    if payment.status == "pending":
        return "paying" if payment.mode in channels.CUSTOMER_PRESENT_MODES else "waiting"
    return payment.status


def present(payment: Payment, order: Order) -> dict[str, Any]:
    return {
        "order_no": order.order_no,
        "order_status": order.status,
        "attempt_id": payment.attempt_id,
        "payment_id": payment.id,
        "channel": payment.channel,
        "mode": payment.mode,
        "out_trade_no": payment.out_trade_no,
        "amount_fen": payment.amount_fen,
        "state": state_of(payment),
        "status": payment.status,
        "pay_url": (payment.data or {}).get("pay_url"),
        "transaction_id": payment.channel_txn_id,
        "failure_code": payment.failure_code,
        "failure_reason": payment.failure_reason,
        "expires_at": payment.expires_at,
        "paid_at": payment.succeeded_at,
    }


async def lock_order(session: AsyncSession, order_id: int) -> Order:
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise OrderNotFound(field="order_no")
    return order


async def _lock_by_number(session: AsyncSession, order_no: str, store_id: int) -> Order:
    order = await session.scalar(
        select(Order)
        .where(Order.order_no == order_no, Order.store_id == store_id)
        .with_for_update()
    )
    if order is None:
        raise OrderNotFound(field="order_no")
    return order


class _CloseFirst(Exception):
    """Another attempt of the order is still open and may be closed for the new one (a QR or
    phone-page attempt, or a payment code past its deadline): `pay` closes it outside the
    lock, then begins again."""

    def __init__(self, payment_id: int) -> None:
        self.payment_id = payment_id
        super().__init__(payment_id)


class _PaidInstead(Exception):
    """The attempt id was answered `already_paid` before (another attempt of the order turned
    out paid, and this one was never started): `pay` answers the same again."""

    def __init__(self, payment: Payment, order: Order) -> None:
        self.payment, self.order = payment, order
        super().__init__(payment.id)


#: Payment.data key: the attempts answered `already_paid` by this (paid) payment, each
#: {"attempt_id", "channel", "mode"}, so that one sent again is answered the same.
PAID_INSTEAD = "paid_instead_of"


async def _paid_instead(session: AsyncSession, order: Order, cmd: PayCommand) -> Payment | None:
    """The paid attempt that answered `cmd.attempt_id` with `already_paid`, if one did."""
    paid = (
        await session.scalars(
            select(Payment).where(Payment.order_id == order.id, Payment.status == "succeeded")
        )
    ).all()
    for payment in paid:
        for asked in (payment.data or {}).get(PAID_INSTEAD, []):
            if asked.get("attempt_id") != cmd.attempt_id:
                continue
            if (asked.get("channel"), asked.get("mode")) != (cmd.channel, cmd.mode):
                raise AttemptConflict(
                    f"Attempt {cmd.attempt_id} was a {asked.get('channel')} "
                    f"{asked.get('mode')} payment",
                    field="attempt_id",
                )
            return payment
    return None


def in_progress(payment: Payment, reason: str = "is in progress") -> PaymentInProgress:
    message = f"Payment attempt {payment.attempt_id} of this order {reason}: read its state"
    return PaymentInProgress(
        message,
        details=[ErrorDetail(field="attempt_id", reason=PaymentInProgress.code, message=message)],
    )


async def _open_attempt(session: AsyncSession, order_id: int) -> Payment | None:
    return await session.scalar(
        select(Payment)
        .where(
            Payment.order_id == order_id,
            Payment.status == "pending",
            Payment.account_id.is_not(None),
        )
        .order_by(Payment.id)
        .limit(1)
        .execution_options(populate_existing=True)
    )


def _keep_raw(payment: Payment, answer: ChannelPayment) -> None:
    raw = answer.raw or {}
    if "request" in raw:
        payment.raw_request = raw["request"]
    payment.raw_response = raw.get("response", raw)


async def begin(
    session: AsyncSession, *, order_no: str, store_id: int, cmd: PayCommand, actor: Actor
) -> tuple[Payment, Order, bool]:
    """Record the attempt (under the order's lock). Returns (payment, order, new): an attempt
    id seen before returns its payment as it stands, and calls nothing."""
    order = await _lock_by_number(session, order_no, store_id)
    seen = await session.scalar(
        select(Payment).where(Payment.order_id == order.id, Payment.attempt_id == cmd.attempt_id)
    )
    if seen is not None:
        if (seen.channel, seen.mode) != (cmd.channel, cmd.mode):
            raise AttemptConflict(
                f"Attempt {cmd.attempt_id} was a {seen.channel} {seen.mode} payment",
                field="attempt_id",
            )
        return seen, order, False
    if order.status not in statemachine.UNPAID_STATES:
        instead = await _paid_instead(session, order, cmd)
        if instead is not None:
            raise _PaidInstead(instead, order)
        statemachine.check(order.status, S.PAID)  # a 409 naming both states
    owed = order.total_fen - order.paid_fen
    if owed <= 0:
        raise NothingOwed(field="order_no")
    account = await accounts.for_store(session, store_id, cmd.channel)
    if account is None:
        raise ChannelNotOffered(f"This store does not take {cmd.channel} payments", field="channel")
    if cmd.mode == "code" and not cmd.auth_code:
        raise ValidationFailed("A payment-code attempt needs the scanned code", field="auth_code")
    if cmd.mode == "card" and not cmd.auth_code:
        raise ValidationFailed("A card payment needs the number the reader read", field="auth_code")
    # One open trade per order, as at a real cash desk.
    current = await _open_attempt(session, order.id)
    if current is not None:
        expired = current.expires_at is not None and current.expires_at <= utcnow()
        if current.mode in channels.CUSTOMER_PRESENT_MODES and not expired:
            raise in_progress(current)  # the customer may be entering a password
        raise _CloseFirst(current.id)
    if order.status == S.PAYMENT_FAILED:
        await lifecycle.transition(
            session, order, S.AWAITING_PAYMENT, actor=actor, reason="retry_payment",
            audit_action="order.retry_payment",
        )  # fmt: skip
    now = utcnow()
    count = await session.scalar(
        select(func.count()).select_from(Payment).where(Payment.order_id == order.id)
    )
    lifetime = USER_PAYING_LIMIT if cmd.mode in channels.CUSTOMER_PRESENT_MODES else QR_LIFETIME
    expires = now + lifetime
    if order.expires_at is not None and cmd.mode not in channels.CUSTOMER_PRESENT_MODES:
        expires = min(expires, max(order.expires_at, now + timedelta(minutes=1)))
    payment = Payment(
        order_id=order.id,
        store_id=order.store_id,
        channel=cmd.channel,
        status="pending",
        amount_fen=owed,
        created_at=now,
        updated_at=now,
        actor_type=actor.kind,
        actor_id=actor.audit_id,
        actor_name=actor.name,
        account_id=account.id,
        mode=cmd.mode,
        # Letters and digits only, at most 32: what all three platforms accept.
        out_trade_no=f"{order.order_no}P{int(count or 0) + 1:02d}",
        attempt_id=cmd.attempt_id,
        expires_at=expires,
        data={},
    )
    session.add(payment)
    await session.flush()
    await audit.record(
        session,
        actor,
        "order.payment_start",
        "order",
        order.id,
        store_id=order.store_id,
        after={
            "payment_id": payment.id,
            "attempt_id": cmd.attempt_id,
            "channel": cmd.channel,
            "mode": cmd.mode,
            "amount_fen": owed,
            "out_trade_no": payment.out_trade_no,
        },
    )
    return payment, order, True


async def pay(
    session: AsyncSession, *, order_no: str, store_id: int, cmd: PayCommand, actor: Actor
) -> dict[str, Any]:
    """Start (or find again) a payment attempt and ask the platform; returns its state.

    Commits the attempt before calling the platform (see the module's note). Another attempt
    still open on the order refuses it (a payment code being paid: `payment_in_progress`) or
    is closed on its platform first (a QR or phone page the customer turned away from); if
    that one turns out paid, the order is paid and nothing new is started (`already_paid`)."""
    for _ in range(_CLOSE_TRIES):
        try:
            payment, order, new = await begin(
                session, order_no=order_no, store_id=store_id, cmd=cmd, actor=actor
            )
            break
        except _PaidInstead as answered:
            await audit.record(
                session,
                actor,
                "order.payment_resent",
                "order",
                answered.order.id,
                store_id=answered.order.store_id,
                note=f"attempt {cmd.attempt_id} sent again; answered already_paid again",
            )
            return present(answered.payment, answered.order) | {"outcome": "already_paid"}
        except _CloseFirst as first:
            state = await refresh(session, first.payment_id, actor=actor, supersede=True)
            other = await _get(session, first.payment_id, fresh=True)
            if state == "paid":
                order = await twophase.relock_order(session, other.order_id)
                # Remembered (under the order's lock), so the same attempt id sent again (an
                # answer lost) is answered the same, not refused as the order is paid.
                data = dict(other.data or {})
                asked = {"attempt_id": cmd.attempt_id, "channel": cmd.channel, "mode": cmd.mode}
                data[PAID_INSTEAD] = [*data.get(PAID_INSTEAD, []), asked]
                other.data = data
                return present(other, order) | {"outcome": "already_paid"}
            if other.status == "pending":  # the platform could not be asked: still open
                raise in_progress(other, "could not be closed on its platform") from None
    else:
        raise in_progress(other, "keeps being replaced")
    if not new:
        # Nothing changes, but a terminal resending is worth seeing in the audit log.
        await audit.record(
            session,
            actor,
            "order.payment_resent",
            "order",
            order.id,
            store_id=order.store_id,
            note=f"attempt {cmd.attempt_id} sent again; answered with its state",
        )
        return present(payment, order) | {"outcome": "duplicate"}
    account = await session.get(PaymentAccount, payment.account_id)
    assert account is not None
    remote = accounts.open_platform(account)
    request = PayRequest(
        out_trade_no=payment.out_trade_no or "",
        amount_fen=payment.amount_fen,
        description=f"订单 {order.order_no}",
        mode=cmd.mode,
        auth_code=cmd.auth_code,
        client_ip=cmd.client_ip,
        expires_at=payment.expires_at,
        notify_url=accounts.notify_url_of(account),
        return_url=cmd.return_url,
        payer_id=cmd.payer_id,
        started_at=payment.created_at,
    )
    order_id, payment_id = order.id, payment.id
    # The attempt exists before the platform hears of it (payments.twophase).
    outcome = await twophase.call_outside(session, lambda: remote.pay(request))

    order = await twophase.relock_order(session, order_id)
    payment = await _get(session, payment_id, fresh=True)
    answer = outcome.answer
    if answer is None:
        assert outcome.error is not None
        payment.failure_code = outcome.error.code
        payment.failure_reason = str(outcome.error)[:300]
        payment.updated_at = utcnow()
        # Outcome unknown: stays pending; the query job asks the platform.
    else:
        await apply_answer(session, order, payment, answer, actor=actor, reason="pay")
    await session.flush()
    return present(payment, order) | {"outcome": "started"}


#: Outcomes of `pay` that started nothing (answered 200, not 201).
NOTHING_STARTED = frozenset({"duplicate", "already_paid"})
#: How often `pay` closes an open attempt and begins again before giving up (another request
#: may start one in between).
_CLOSE_TRIES = 3


async def _get(session: AsyncSession, payment_id: int, *, fresh: bool = False) -> Payment:
    payment = await session.get(Payment, payment_id, populate_existing=fresh)
    assert payment is not None
    return payment


async def apply_answer(
    session: AsyncSession,
    order: Order,
    payment: Payment,
    answer: ChannelPayment,
    *,
    actor: Actor,
    reason: str,
) -> str:
    """Apply a platform's answer about `payment` (the order's row is locked by the caller).
    Returns what happened: applied | unchanged."""
    _keep_raw(payment, answer)
    payment.updated_at = utcnow()
    if answer.status == "succeeded":
        return await settle_success(
            session,
            order,
            payment,
            amount_fen=answer.amount_fen,
            transaction_id=answer.channel_txn_id,
            paid_at=answer.paid_at,
            actor=actor,
            reason=reason,
        )
    if payment.status != "pending":
        return "unchanged"  # a final state is never undone by a later, older answer
    if answer.status == "pending":
        if answer.pay_url:
            payment.data = {**(payment.data or {}), "pay_url": answer.pay_url}
        payment.failure_code = answer.failure_code
        return "unchanged"
    if answer.status in ("failed", "closed"):
        payment.status = "failed" if answer.status == "failed" else "closed"
        payment.failure_code = answer.failure_code
        payment.failure_reason = (answer.failure_reason or answer.status)[:300]
        await session.flush()
        if payment.status == "failed" and order.status == S.AWAITING_PAYMENT:
            await orders.apply_payment(session, order, payment, actor=actor, reason=reason)
        return "applied"
    return "unchanged"


async def settle_success(
    session: AsyncSession,
    order: Order,
    payment: Payment,
    *,
    amount_fen: int,
    transaction_id: str | None,
    paid_at: datetime | None,
    actor: Actor,
    reason: str,
) -> str:
    """The platform says `payment` succeeded. Once per payment, under the order's lock:
    an unpaid order is paid; a paid one was paid twice (an amount_mismatch issue offers the
    extra back, or it is refunded at once when the account says so); a closed or cancelled
    one gets the money back in full. Returns applied | duplicate | mismatch."""
    if payment.status == "succeeded":
        return "duplicate"
    if amount_fen != payment.amount_fen:
        await mismatch(session, order, payment, amount_fen, actor=actor)
        return "mismatch"
    payment.status = "succeeded"
    payment.channel_txn_id = transaction_id or payment.channel_txn_id
    payment.succeeded_at = paid_at or utcnow()
    payment.failure_code = None
    payment.failure_reason = None
    payment.updated_at = utcnow()
    await session.flush()
    if order.status in statemachine.UNPAID_STATES:
        await orders.apply_payment(session, order, payment, actor=actor, reason=reason)
        return "applied"
    if order.status in statemachine.PAID_STATES:
        # Paid twice: the order's money now exceeds its total (apply_payment opens the
        # amount_mismatch issue whose one-click action refunds the difference).
        await orders.apply_payment(session, order, payment, actor=actor, reason="double_payment")
        if await _auto_refund_duplicates(session, order, payment):
            await refunds.refund_extra(session, order, payment, actor=actor)
        return "applied"
    # Closed, cancelled, refunded: the goods are not the customer's; the money goes back.
    await refunds.refund_late(session, order, payment, actor=actor)
    return "applied"


async def _auto_refund_duplicates(session: AsyncSession, order: Order, payment: Payment) -> bool:
    """Whether a second successful payment goes back at once: the store's own setting when it
    has one, else the payment account's (a store on the chain's account may differ from it)."""
    store_setting = await session.scalar(
        select(Store.auto_refund_duplicates).where(Store.id == order.store_id)
    )
    if store_setting is not None:
        return store_setting
    account = await session.get(PaymentAccount, payment.account_id)
    return account is not None and account.auto_refund_duplicates


async def mismatch(
    session: AsyncSession, order: Order, payment: Payment, amount_fen: int, *, actor: Actor
) -> None:
    """The platform reports another amount than we asked for: not believed as paid; a person
    looks (amount_mismatch issue with both amounts)."""
    payment.data = {**(payment.data or {}), "reported_amount_fen": amount_fen}
    await lifecycle.open_issue(
        session,
        order,
        "amount_mismatch",
        actor=actor,
        detail={
            "payment_id": payment.id,
            "expected_fen": payment.amount_fen,
            "reported_fen": amount_fen,
            "total_fen": order.total_fen,
            "paid_fen": order.paid_fen,
        },
    )


async def latest_for_order(session: AsyncSession, order_id: int) -> Payment | None:
    return await session.scalar(
        select(Payment)
        .where(Payment.order_id == order_id, Payment.account_id.is_not(None))
        .order_by(Payment.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


async def payment_state(session: AsyncSession, order: Order) -> dict[str, Any]:
    """The order's payment state for a terminal: its latest platform attempt, if any."""
    payment = await latest_for_order(session, order.id)
    owed = order.total_fen - order.paid_fen
    out: dict[str, Any] = {
        "order_no": order.order_no,
        "order_status": order.status,
        "total_fen": order.total_fen,
        "paid_fen": order.paid_fen,
        "owed_fen": max(0, owed),
        "attempt": present(payment, order) if payment is not None else None,
    }
    return out


#: How often a waiting terminal's read asks the platform about a pending attempt.
QUERY_EVERY = timedelta(seconds=2)
_POLL_SLEEP = 0.5


async def refresh(
    session: AsyncSession, payment_id: int, *, actor: Actor, supersede: bool = False
) -> str:
    """Ask the platform what became of a pending attempt and apply it; past its deadline (or
    at once with `supersede`: a new attempt replaces it) an unpaid attempt is reversed
    (payment code) or closed (QR, phone page) on the platform, so it can no longer be paid.
    Commits. Returns the attempt's state afterwards."""
    payment = await _get(session, payment_id)
    if payment.status != "pending" or payment.account_id is None:
        return state_of(payment)
    account = await session.get(PaymentAccount, payment.account_id)
    assert account is not None
    remote = accounts.open_platform(account)
    out_no, order_id, mode = payment.out_trade_no or "", payment.order_id, payment.mode
    started = payment.created_at
    expired = supersede or (payment.expires_at is not None and payment.expires_at <= utcnow())

    async def ask() -> tuple[ChannelPayment, bool]:
        """What became of it; past its deadline and unpaid, closed there (closing=True).

        Closed only when the platform says it is: a card consume the gateway has not decided
        (UnionPay 05) cannot be undone, and an Alipay cancel may answer "try again"
        (retry_flag Y); such an attempt stays pending, asked about again, while the customer
        may still be charged for it."""
        answer = await remote.query(out_no, started_at=started)
        if expired and answer.status == "pending":
            answer = await (
                remote.reverse(out_no, started_at=started)
                if mode in channels.CUSTOMER_PRESENT_MODES
                else remote.close(out_no)
            )
            return answer, answer.status == "failed"
        return answer, False

    outcome = await twophase.call_outside(session, ask)  # no lock held while it is asked
    if outcome.answer is None:
        assert outcome.error is not None
        payment = await _get(session, payment_id)
        payment.failure_code, payment.updated_at = outcome.error.code, utcnow()
        await session.commit()
        return state_of(payment)
    answer, closing = outcome.answer
    order = await twophase.relock_order(session, order_id)
    payment = await _get(session, payment_id, fresh=True)
    if in_flight(payment, answer, expired=expired):
        # Its request timed out and may not have reached the platform yet: "no such payment"
        # is no failure before its deadline (then the platform no longer takes it).
        _keep_raw(payment, answer)
        payment.updated_at = utcnow()
    elif closing and payment.status == "pending":
        _keep_raw(payment, answer)
        payment.status = "closed"
        payment.failure_code = answer.failure_code or "EXPIRED"
        payment.failure_reason = "not paid in time: closed on the platform"
        payment.updated_at = utcnow()
        if supersede:
            payment.failure_reason = "replaced by a new attempt: closed on the platform"
            await audit.record(
                session,
                actor,
                "order.payment_superseded",
                "order",
                order.id,
                store_id=order.store_id,
                after={"payment_id": payment.id, "attempt_id": payment.attempt_id},
            )
        elif mode in channels.CUSTOMER_PRESENT_MODES and order.status == S.AWAITING_PAYMENT:
            await orders.mark_payment_failed(
                session, order, actor=actor, reason="payment code not confirmed in time: reversed"
            )
    else:
        await apply_answer(session, order, payment, answer, actor=actor, reason="query")
    await session.commit()
    return state_of(payment)


def in_flight(payment: Payment, answer: ChannelPayment, *, expired: bool) -> bool:
    """Whether the platform's "no such payment" about a pending attempt may only mean that its
    request, which timed out (`failure_code` timeout: sent, never answered), has not arrived
    yet. Before the attempt's deadline that is no failure: the request may still be taken and
    charged (the gateways take a consume seconds late), so the attempt stays pending and is
    asked about again."""
    return (
        payment.status == "pending"
        and payment.failure_code == "timeout"
        and answer.not_found
        and not expired
    )


async def wait_for_state(
    session: AsyncSession, *, order_no: str, store_id: int, wait_seconds: int, actor: Actor
) -> dict[str, Any]:
    """The order's payment state; with `wait_seconds`, answered as soon as its latest attempt
    is no longer pending or when the time is up (a long poll). A pending attempt is asked
    about on the platform at most every QUERY_EVERY."""
    deadline = utcnow() + timedelta(seconds=wait_seconds)
    while True:
        order = await session.scalar(
            select(Order)
            .where(Order.order_no == order_no, Order.store_id == store_id)
            .execution_options(populate_existing=True)
        )
        if order is None:
            raise OrderNotFound(field="order_no")
        payment = await latest_for_order(session, order.id)
        now = utcnow()
        if (
            payment is not None
            and payment.status == "pending"
            and (payment.updated_at is None or now - payment.updated_at >= QUERY_EVERY)
        ):
            await refresh(session, payment.id, actor=actor)
            continue
        if payment is None or payment.status != "pending" or now >= deadline:
            return await payment_state(session, order)
        await session.rollback()  # nothing written: the next look sees what others commit
        await asyncio.sleep(_POLL_SLEEP)


async def query_locked(
    session: AsyncSession, order: Order, payment: Payment, *, actor: Actor
) -> ChannelPayment:
    """Ask the platform about `payment` and apply the answer, for a caller that holds the
    order's lock and acts in its own transaction (a person's re-query, the automatic rule).
    An unreachable platform answers `unknown` and changes nothing."""
    account = await session.get(PaymentAccount, payment.account_id)
    if account is None or not payment.out_trade_no:
        return ChannelPayment(status="unknown", amount_fen=0)
    try:
        answer = await accounts.open_platform(account).query(
            payment.out_trade_no, started_at=payment.created_at
        )
    except PlatformError as exc:
        return ChannelPayment(status="unknown", amount_fen=0, failure_code=exc.code)
    expired = payment.expires_at is not None and payment.expires_at <= utcnow()
    if in_flight(payment, answer, expired=expired):
        # As `refresh` rules: a timed-out request the platform has not seen yet may still be
        # taken and charged before the deadline, so "no such payment" is no failure yet.
        _keep_raw(payment, answer)
        payment.updated_at = utcnow()
        return ChannelPayment(
            status="pending",
            amount_fen=0,
            failure_code="timeout",
            failure_reason="its request timed out and may still reach the platform",
            raw=answer.raw,
        )
    await apply_answer(session, order, payment, answer, actor=actor, reason="requery")
    return answer


#: Who pays from the phone page (the customer, holding the receipt's signed link).
CUSTOMER = Actor(
    kind="customer", id=None, name="customer (phone page)", permissions=frozenset(), store_ids=None
)
#: The channels a phone can pay on (a card needs a reader).
PHONE_CHANNELS = ("wechat", "alipay")


async def phone_state(
    session: AsyncSession, order_id: int, *, wechat_redirect: str | None = None
) -> dict[str, Any]:
    """The phone page's view of paying: what is owed, the channels offered, the last attempt.
    `wechat_redirect` (the page is inside WeChat): where WeChat's authorisation comes back to,
    answered as `wechat_oauth_url` when the store can take JSAPI payments."""
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound()
    latest = await latest_for_order(session, order.id)
    if (
        latest is not None
        and latest.status == "pending"
        and (latest.updated_at is None or utcnow() - latest.updated_at >= QUERY_EVERY)
    ):
        # Back from the platform's page: ask it rather than wait for the callback.
        await refresh(session, latest.id, actor=CUSTOMER)
        order = await session.get(Order, order_id, populate_existing=True)
        assert order is not None
    state = await payment_state(session, order)
    offered = await accounts.offered_channels(session, order.store_id)
    owed = state["owed_fen"] if order.status in statemachine.UNPAID_STATES else 0
    channels = [c for c in offered if c in PHONE_CHANNELS] if owed else []
    oauth_url = None
    if wechat_redirect is not None and "wechat" in channels:
        from selfmart.payments import jsapi

        oauth_url = await jsapi.oauth_url(session, order, wechat_redirect)
    return {
        "order_no": order.order_no,
        "order_status": order.status,
        "owed_fen": owed,
        "channels": channels,
        "attempt": state["attempt"],
        "wechat_oauth_url": oauth_url,
    }


async def pay_from_phone(
    session: AsyncSession,
    order_id: int,
    *,
    attempt_id: str,
    channel: str,
    client_ip: str,
    return_url: str,
    oauth_code: str | None = None,
    payer_token: str | None = None,
) -> dict[str, Any]:
    """Start (or find again) a phone-page payment: WeChat H5 or Alipay wap, whose answer's
    `pay_url` is the platform's page to open; or, with WeChat's authorisation `oauth_code`
    (the page inside WeChat), a JSAPI payment whose answer's `jsapi` is what the page hands
    `getBrandWCPayRequest`, and whose `payer_token` pays again as the same payer (instead of
    a code: the code is spent)."""
    from selfmart.payments import jsapi  # the WeChat package imports the platform contract

    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound()
    mode: PayMode = "h5"
    payer_id = None
    if channel == "wechat" and (oauth_code is not None or payer_token is not None):
        mode = "jsapi"
        # a resent attempt (lost answer) is answered as it stands: its code was used already
        if not await jsapi.attempt_exists(session, order.id, attempt_id):
            if oauth_code is not None:
                payer_id = await jsapi.openid_for(session, order, oauth_code)
            elif payer_token is not None:
                payer_id = await jsapi.open_payer(session, order, payer_token)
    cmd = PayCommand(
        attempt_id=attempt_id,
        channel=channel,
        mode=mode,
        client_ip=client_ip,
        return_url=return_url if mode == "h5" else None,
        payer_id=payer_id,
    )
    result = await pay(
        session, order_no=order.order_no, store_id=order.store_id, cmd=cmd, actor=CUSTOMER
    )
    result["jsapi"] = None
    result["payer_token"] = None
    if payer_id is not None:
        result["payer_token"] = await jsapi.seal_payer(session, order, payer_id)
    if result["mode"] == "jsapi" and result["status"] == "pending" and result["pay_url"]:
        result["jsapi"] = await jsapi.bridge_params(session, order, str(result["pay_url"]))
    return result
