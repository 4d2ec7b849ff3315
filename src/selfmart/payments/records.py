"""Reading the money records for the console: payments (every attempt) with filters, and one
payment whole: its order's other attempts, every callback about it and its refunds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import NotFound
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams, paginate
from selfmart.models import Order, Payment, PaymentCallback, Refund


class PaymentNotFound(NotFound):
    code, message = "payment_not_found", "No such payment"


#: How the console may sort payments: a column, newest / largest first with a leading "-".
PaymentSort = Literal["-created_at", "created_at", "-amount_fen", "amount_fen"]
_SORT_COLUMNS: dict[str, Any] = {"created_at": Payment.created_at, "amount_fen": Payment.amount_fen}


def _scoped(stmt: Select[Any], actor: Actor) -> Select[Any]:
    if actor.store_ids is not None:
        stmt = stmt.where(Payment.store_id.in_(actor.store_ids))
    return stmt


async def _rows(session: AsyncSession, payments: list[Payment]) -> list[dict[str, Any]]:
    if not payments:
        return []
    ids = [p.id for p in payments]
    numbers = dict(
        (
            await session.execute(
                select(Order.id, Order.order_no).where(Order.id.in_({p.order_id for p in payments}))
            )
        ).all()
    )
    refunded = dict(
        (
            await session.execute(
                select(Refund.payment_id, func.sum(Refund.amount_fen))
                .where(Refund.payment_id.in_(ids), Refund.status == "succeeded")
                .group_by(Refund.payment_id)
            )
        ).all()
    )
    return [
        {
            **{c.key: getattr(p, c.key) for c in Payment.__table__.columns},
            "order_no": numbers.get(p.order_id, ""),
            "refunded_fen": int(refunded.get(p.id) or 0),
        }
        for p in payments
    ]


async def list_payments(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    store_id: int | None = None,
    channel: str | None = None,
    status: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    amount_min_fen: int | None = None,
    amount_max_fen: int | None = None,
    order_no: str | None = None,
    sort: PaymentSort = "-created_at",
) -> tuple[list[dict[str, Any]], int]:
    column = _SORT_COLUMNS[sort.lstrip("-")]
    if sort.startswith("-"):
        order = (column.desc(), Payment.id.desc())
    else:
        order = (column.asc(), Payment.id.asc())
    stmt = _scoped(select(Payment), actor).order_by(*order)
    if store_id is not None:
        stmt = stmt.where(Payment.store_id == store_id)
    if channel:
        stmt = stmt.where(Payment.channel == channel)
    if status:
        stmt = stmt.where(Payment.status == status)
    if created_from is not None:
        stmt = stmt.where(Payment.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Payment.created_at < created_to)
    if amount_min_fen is not None:
        stmt = stmt.where(Payment.amount_fen >= amount_min_fen)
    if amount_max_fen is not None:
        stmt = stmt.where(Payment.amount_fen <= amount_max_fen)
    if order_no:
        stmt = stmt.where(Payment.order_id.in_(select(Order.id).where(Order.order_no == order_no)))
    payments, total = await paginate(session, stmt, params)
    return await _rows(session, payments), total


async def get_payment(session: AsyncSession, payment_id: int, *, actor: Actor) -> Payment:
    payment: Payment | None = await session.scalar(
        _scoped(select(Payment).where(Payment.id == payment_id), actor)
    )
    if payment is None:
        raise PaymentNotFound(f"No payment {payment_id}")
    return payment


async def detail(session: AsyncSession, payment: Payment) -> dict[str, Any]:
    """The payment, its order's other attempts, every callback about it, its refunds."""
    siblings = list(
        (
            await session.scalars(
                select(Payment).where(Payment.order_id == payment.order_id).order_by(Payment.id)
            )
        ).all()
    )
    rows = await _rows(session, siblings)
    this = next(r for r in rows if r["id"] == payment.id)
    callbacks = (
        await session.scalars(
            select(PaymentCallback)
            .where(PaymentCallback.payment_id == payment.id)
            .order_by(PaymentCallback.id)
        )
    ).all()
    refunds = (
        await session.scalars(
            select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id)
        )
    ).all()
    return {
        **this,
        "attempts": [r for r in rows if r["id"] != payment.id],
        "callbacks": list(callbacks),
        "refunds": list(refunds),
    }


# --- read helpers for settlement -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Captured:
    """A succeeded payment or refund, as store settlement counts it."""

    store_id: int
    channel: str
    account_id: int | None
    amount_fen: int
    at: datetime


async def captured(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    store_ids: list[int] | None,
    skip_payments: Select[Any],
    skip_refunds: Select[Any],
) -> tuple[list[Captured], list[Captured]]:
    """Payments that succeeded and refunds completed in [since, until), except those whose
    ids `skip_payments` / `skip_refunds` select (the ones a reconciled bill accounts for)."""
    pay = select(
        Payment.store_id, Payment.channel, Payment.account_id, Payment.amount_fen,
        Payment.succeeded_at,
    ).where(
        Payment.status == "succeeded",
        Payment.succeeded_at >= since,
        Payment.succeeded_at < until,
        Payment.id.not_in(skip_payments),
    )  # fmt: skip
    ref = select(
        Refund.store_id, Refund.channel, Refund.account_id, Refund.amount_fen,
        Refund.completed_at,
    ).where(
        Refund.status == "succeeded",
        Refund.completed_at >= since,
        Refund.completed_at < until,
        Refund.id.not_in(skip_refunds),
    )  # fmt: skip
    if store_ids is not None:
        pay = pay.where(Payment.store_id.in_(store_ids))
        ref = ref.where(Refund.store_id.in_(store_ids))
    return (
        [Captured(s, c, a, n, t) for s, c, a, n, t in await session.execute(pay) if t is not None],
        [Captured(s, c, a, n, t) for s, c, a, n, t in await session.execute(ref) if t is not None],
    )


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Platform payment attempts started in a window that reached an end: paid or failed."""

    succeeded: int
    failed: int

    @property
    def decided(self) -> int:
        return self.succeeded + self.failed


async def outcomes(
    session: AsyncSession, since: datetime, *, store_id: int | None = None
) -> Outcomes:
    """How the payment attempts made since `since` (in one store, or all) ended. Pending
    attempts are not counted yet; closed ones (the customer walked away) are no failure."""
    stmt = (
        select(Payment.status, func.count())
        .where(Payment.created_at >= since, Payment.status.in_(("succeeded", "failed")))
        .group_by(Payment.status)
    )
    if store_id is not None:
        stmt = stmt.where(Payment.store_id == store_id)
    counts = {str(status): int(n) for status, n in await session.execute(stmt)}
    return Outcomes(succeeded=counts.get("succeeded", 0), failed=counts.get("failed", 0))
