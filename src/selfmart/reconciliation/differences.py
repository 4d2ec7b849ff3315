"""Differences found by reconciliation: listed with filters, opened with our order and
payment beside the bill line, and resolved with a note (audited)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import Conflict, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import Page, PageParams
from selfmart.kit.time import utcnow
from selfmart.models import ReconciliationItem, ReconciliationRun
from selfmart.orders import service as orders
from selfmart.orders.schemas import ManualPaymentBody
from selfmart.payments import records, refunds
from selfmart.payments import service as payments
from selfmart.reconciliation.matching import MATCHED
from selfmart.reconciliation.reports import scoped_runs

#: the decisions a person can record on a difference
RESOLUTIONS = ("accept", "refund_customer", "manual_payment")


class DifferenceNotFound(NotFound):
    """(the generic code: the console needs no new translation)"""


class DifferenceNotOpen(Conflict):
    """(the generic code: the console needs no new translation)"""


def _base(actor: Actor) -> Any:
    return scoped_runs(
        select(ReconciliationItem, ReconciliationRun).join(
            ReconciliationRun, ReconciliationRun.id == ReconciliationItem.run_id
        ),
        actor,
    ).where(ReconciliationItem.difference != MATCHED)


def _row(item: ReconciliationItem, run: ReconciliationRun) -> dict[str, Any]:
    doc = {c.key: getattr(item, c.key) for c in ReconciliationItem.__table__.columns}
    doc.update(bill_date=run.bill_date, channel=run.channel, account_id=run.account_id)
    return doc


async def list_differences(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    run_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    channel: str | None = None,
    difference: str | None = None,
    state: str | None = None,
) -> Page[dict[str, Any]]:
    stmt = _base(actor)
    if run_id is not None:
        stmt = stmt.where(ReconciliationItem.run_id == run_id)
    if date_from is not None:
        stmt = stmt.where(ReconciliationRun.bill_date >= date_from)
    if date_to is not None:
        stmt = stmt.where(ReconciliationRun.bill_date <= date_to)
    if channel is not None:
        stmt = stmt.where(ReconciliationRun.channel == channel)
    if difference is not None:
        stmt = stmt.where(ReconciliationItem.difference == difference)
    if state is not None:
        stmt = stmt.where(ReconciliationItem.state == state)
    total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
    rows = await session.execute(
        stmt.order_by(ReconciliationRun.bill_date.desc(), ReconciliationItem.id)
        .offset(params.offset)
        .limit(params.size)
    )
    return Page(
        items=[_row(i, r) for i, r in rows],
        total=total,
        page=params.page,
        size=params.size,
    )


async def _get(
    session: AsyncSession, item_id: int, actor: Actor, *, for_update: bool = False
) -> tuple[ReconciliationItem, ReconciliationRun]:
    stmt = _base(actor).where(ReconciliationItem.id == item_id)
    if for_update:
        stmt = stmt.with_for_update(of=ReconciliationItem)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise DifferenceNotFound(f"No reconciliation difference {item_id}")
    return row[0], row[1]


async def visible(session: AsyncSession, item_id: int, *, actor: Actor) -> None:
    """Raises `DifferenceNotFound` unless `actor` may see the difference."""
    await _get(session, item_id, actor)


async def detail(session: AsyncSession, item_id: int, *, actor: Actor) -> dict[str, Any]:
    """The difference with the bill line, our payment (its attempts, callbacks, refunds) and
    our order, as far as each exists."""
    item, run = await _get(session, item_id, actor)
    doc = _row(item, run)
    doc["payment"] = None
    doc["order"] = None
    if item.payment_id is not None:
        payment = await records.get_payment(session, item.payment_id, actor=actor)
        doc["payment"] = await records.detail(session, payment)
    if item.order_id is not None:
        doc["order"] = await orders.get_for_actor(session, item.order_id, actor)
    return doc


async def resolve(
    session: AsyncSession,
    item_id: int,
    resolution: str,
    note: str,
    *,
    actor: Actor,
    amount_fen: int | None = None,
) -> dict[str, Any]:
    """Record a person's decision on an open (or held) difference and carry it out:
    `accept` only records it; `refund_customer` refunds through our payment the money the
    platform holds beyond ours; `manual_payment` records on our order money collected by hand.
    All of it is one transaction: a refund the platform refuses leaves the difference open."""
    item, run = await _get(session, item_id, actor, for_update=True)
    if item.state not in ("open", "pending"):
        raise DifferenceNotOpen(
            f"The difference is {item.state}; only an open one can be resolved", field="state"
        )
    before = {"state": item.state}
    outcome: dict[str, Any] = {}
    if resolution == "refund_customer":
        outcome = await _refund_customer(session, item, note, amount_fen, actor)
    elif resolution == "manual_payment":
        outcome = await _manual_payment(session, item, note, amount_fen, actor)
    elif amount_fen is not None:
        raise ValidationFailed("Accepting a difference moves no money", field="amount_fen")
    item.state = "resolved"
    item.resolution = resolution
    item.note = note
    item.resolved_by = actor.name
    item.resolved_at = utcnow()
    await audit.record(
        session,
        actor,
        "reconciliation.resolve",
        "reconciliation_difference",
        item.id,
        store_id=item.store_id,
        before=before,
        after={
            "state": "resolved",
            "resolution": resolution,
            "difference": item.difference,
            **outcome,
        },
        note=note,
        label=f"{run.channel} {run.bill_date.isoformat()} {item.out_trade_no or ''}".strip(),
    )
    await session.flush()
    return _row(item, run)


def _platform_holds_more(item: ReconciliationItem) -> int:
    """What the platform's bill holds of the customer's money beyond what we count as paid."""
    if item.kind != "payment" or item.bill_amount_fen is None:
        return 0
    ours = item.our_amount_fen if item.our_status == "succeeded" else 0
    return item.bill_amount_fen - (ours or 0)


async def _refund_customer(
    session: AsyncSession,
    item: ReconciliationItem,
    note: str,
    amount_fen: int | None,
    actor: Actor,
) -> dict[str, Any]:
    if item.payment_id is None:
        raise DifferenceNotOpen(
            "No payment of ours goes with this line: there is nothing to refund through",
            field="resolution",
        )
    amount = amount_fen if amount_fen is not None else _platform_holds_more(item)
    if amount <= 0:
        raise ValidationFailed(
            "The platform holds nothing beyond our records here: give the amount to refund",
            field="amount_fen",
        )
    if item.bill_amount_fen is not None and amount > item.bill_amount_fen:
        raise ValidationFailed(
            f"At most {item.bill_amount_fen} fen (the bill line's amount) can be refunded",
            field="amount_fen",
        )
    payment = await records.get_payment(session, item.payment_id, actor=actor)
    # Recorded pending now, sent to the platform once this resolution has committed
    # (payments.twophase: never from inside a transaction). A platform that refuses it
    # opens a refund_failed issue on the order, worked in the abnormal-order queue.
    refund = await payments.record_refund(
        session,
        payment=payment,
        amount_fen=amount,
        reason=f"reconciliation difference {item.id}",
        lines=[],
        actor=actor,
        note=note,
    )
    refunds.send_after_commit(session, refund.id, actor=actor)
    return {"refund_id": refund.id, "amount_fen": amount, "refund_status": refund.status}


async def _manual_payment(
    session: AsyncSession,
    item: ReconciliationItem,
    note: str,
    amount_fen: int | None,
    actor: Actor,
) -> dict[str, Any]:
    if item.order_id is None:
        raise DifferenceNotOpen(
            "No order of ours goes with this line: there is no order to record a payment on",
            field="resolution",
        )
    if amount_fen is not None and amount_fen <= 0:
        raise ValidationFailed("The amount must be more than zero", field="amount_fen")
    order = await orders.get_for_actor(session, item.order_id, actor, for_update=True)
    payment = await orders.record_manual_payment(
        session,
        order,
        ManualPaymentBody(amount_fen=amount_fen, reference=f"REC-{item.id}", note=note),
        actor=actor,
    )
    return {"payment_id": payment.id, "amount_fen": payment.amount_fen}


async def open_count(session: AsyncSession, *, store_id: int | None = None) -> int:
    """Differences still open (in one store, or in all): what nobody has resolved yet."""
    stmt = (
        select(func.count())
        .select_from(ReconciliationItem)
        .where(ReconciliationItem.state == "open")
    )
    if store_id is not None:
        stmt = stmt.where(ReconciliationItem.store_id == store_id)
    return int(await session.scalar(stmt) or 0)
