"""Stock discrepancies: sales booked past an empty shelf (stores that allow negative stock),
kept until a person has looked (usually by a stocktake or an adjustment) and resolved them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.errors import IllegalTransition, NotFound
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams, paginate
from selfmart.kit.time import utcnow
from selfmart.models import StockDiscrepancy

_FIELDS = ("status", "resolved_by", "resolution_note")


async def list_discrepancies(
    session: AsyncSession,
    *,
    actor: Actor,
    params: PageParams,
    store_id: int | None = None,
    status: str | None = None,
    product_id: int | None = None,
) -> tuple[list[StockDiscrepancy], int]:
    stmt = select(StockDiscrepancy)
    if actor.store_ids is not None:
        stmt = stmt.where(StockDiscrepancy.store_id.in_(actor.store_ids))
    if store_id is not None:
        stmt = stmt.where(StockDiscrepancy.store_id == store_id)
    if status is not None:
        stmt = stmt.where(StockDiscrepancy.status == status)
    if product_id is not None:
        stmt = stmt.where(StockDiscrepancy.product_id == product_id)
    stmt = stmt.order_by(StockDiscrepancy.created_at.desc(), StockDiscrepancy.id.desc())
    return await paginate(session, stmt, params)


async def resolve(
    session: AsyncSession, discrepancy_id: int, *, actor: Actor, note: str
) -> StockDiscrepancy:
    stmt = select(StockDiscrepancy).where(StockDiscrepancy.id == discrepancy_id)
    if actor.store_ids is not None:
        stmt = stmt.where(StockDiscrepancy.store_id.in_(actor.store_ids))
    item = await session.scalar(stmt.with_for_update())
    if item is None:
        raise NotFound("No such discrepancy", field="discrepancy_id")
    if item.status != "open":
        raise IllegalTransition(
            f"The discrepancy cannot go from {item.status} to resolved", field="status"
        )
    before = audit.snapshot(item, _FIELDS)
    item.status = "resolved"
    item.resolved_at = utcnow()
    item.resolved_by = actor.name
    item.resolution_note = note
    await session.flush()
    await audit.record(
        session,
        actor,
        "stock_discrepancy.resolve",
        "stock_discrepancy",
        item.id,
        store_id=item.store_id,
        before=before,
        after=audit.snapshot(item, _FIELDS),
        note=note,
    )
    return item
