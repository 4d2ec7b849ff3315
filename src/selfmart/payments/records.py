"""Reading the money records for the console: payments (every attempt) with filters, and one
payment whole: its order's other attempts, every callback about it and its refunds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, Select, String, and_, case, column, func, literal, select, values
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.errors import NotFound
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import local_day_bounds
from selfmart.models import Order, Payment, PaymentCallback, Refund, Store


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
class CapturedDay:
    """What one store took (payments) or gave back (refunds) through one channel on one of
    its local days."""

    store_id: int
    day: date
    channel: str
    lines: int
    amount_fen: int
    #: lines through a merchant account (a platform charges a fee on them; manual: none)
    platform_lines: int
    #: the fees those lines cost at the rates given, rounded half up per line (lines of an
    #: account without a rate count nothing)
    fee_fen: int


async def captured_by_store_day(
    session: AsyncSession,
    *,
    date_from: date,
    date_to: date,
    store_ids: Sequence[int] | None,
    rates: Mapping[int, int],
    skip_payments: Select[Any],
    skip_refunds: Select[Any],
) -> tuple[list[CapturedDay], list[CapturedDay]]:
    """Succeeded payments and completed refunds summed in SQL per store, local day of the
    store (its `timezone`; UTC for a store we do not know), and channel, over the days
    `date_from`..`date_to`, except those whose ids `skip_payments` / `skip_refunds` select.
    `rates` (merchant account -> basis points) price each line's fee as the platforms do.

    The days are a table of each zone's local days as UTC intervals (DST-safe, the same
    bounds the analytics use), so the bucketing is one range join on any database (a VALUES
    common table expression: SQLite and PostgreSQL both take it)."""
    zone_stmt = select(Store.timezone).distinct()
    if store_ids is not None:
        zone_stmt = zone_stmt.where(Store.id.in_(list(store_ids)))
    zones = {str(z) for z in (await session.scalars(zone_stmt)).all() if z} | {"UTC"}
    at_type = Payment.__table__.c.succeeded_at.type
    spans = []
    for zone in sorted(zones):
        tz = ZoneInfo(zone)
        day = date_from
        while day <= date_to:
            start, end = local_day_bounds(day, tz)
            spans.append((zone, day.isoformat(), start, end))
            day += timedelta(days=1)
    days = (
        values(
            column("zone", String),
            column("day", String),
            column("start", at_type),
            column("end", at_type),
            name="local_days",
        )
        .data(spans)
        .cte("local_days")
    )
    since = min(s[2] for s in spans)
    until = max(s[3] for s in spans)

    async def sums(model: type[Payment] | type[Refund]) -> list[CapturedDay]:
        at = model.succeeded_at if model is Payment else model.completed_at  # type: ignore[union-attr]
        rate = (
            case(dict(rates), value=model.account_id, else_=None)
            if rates
            else literal(None, Integer)
        )
        zone = func.coalesce(Store.timezone, "UTC")
        stmt = (
            select(
                model.store_id,
                days.c.day,
                model.channel,
                func.count(),
                func.sum(model.amount_fen),
                func.count(model.account_id),
                func.coalesce(func.sum((model.amount_fen * rate + 5_000) // 10_000), 0),
            )
            .select_from(model)
            .outerjoin(Store, Store.id == model.store_id)
            .join(days, and_(days.c.zone == zone, at >= days.c.start, at < days.c.end))
            .where(
                model.status == "succeeded",
                at >= since,
                at < until,
                model.id.not_in(skip_payments if model is Payment else skip_refunds),
            )
            .group_by(model.store_id, days.c.day, model.channel)
        )
        if store_ids is not None:
            stmt = stmt.where(model.store_id.in_(list(store_ids)))
        return [
            CapturedDay(int(s), date.fromisoformat(str(d)), str(c), int(n), int(a), int(p), int(f))
            for s, d, c, n, a, p, f in await session.execute(stmt)
        ]

    return await sums(Payment), await sums(Refund)


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
