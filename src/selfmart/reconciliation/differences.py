"""Differences found by reconciliation: listed with filters, opened with our order and
payment beside the bill line, and resolved with a note (audited)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import Conflict, NotFound
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import Page, PageParams
from selfmart.kit.time import utcnow
from selfmart.models import ReconciliationItem, ReconciliationRun
from selfmart.orders import service as orders
from selfmart.payments import records
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
        items=[_row(i, r) for i, r in rows.tuples()],
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
    row = (await session.execute(stmt)).tuples().first()
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
    session: AsyncSession, item_id: int, resolution: str, note: str, *, actor: Actor
) -> dict[str, Any]:
    """Record a person's decision on an open (or held) difference. Refunding the customer and
    recording a manual payment are recorded as decisions; carrying them out is separate."""
    item, run = await _get(session, item_id, actor, for_update=True)
    if item.state not in ("open", "pending"):
        raise DifferenceNotOpen(
            f"The difference is {item.state}; only an open one can be resolved", field="state"
        )
    before = {"state": item.state}
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
        after={"state": "resolved", "resolution": resolution, "difference": item.difference},
        note=note,
        label=f"{run.channel} {run.bill_date.isoformat()} {item.out_trade_no or ''}".strip(),
    )
    await session.flush()
    return _row(item, run)
