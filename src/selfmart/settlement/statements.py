"""Supplier statements: what each supplier is owed for a period, worked out from the stock
ledger line by line, then reviewed, approved (frozen) and paid, every step audited.

What a statement charges depends on the supplier's settlement basis:
- received: purchase receipts of its orders at the order's cost, less goods returned to it,
  less shrinkage of its products when it bears shrinkage;
- consignment: its products sold (sales less customer returns) at its cost, plus shrinkage of
  its products when we bear it (goods we lost are goods we owe for); returns are simply
  goods never sold, so they are not deducted.

Periods are dates in each store's own zone. A movement booked after a statement was made for
a date in its period (a late stocktake, a receipt booked a day late) is counted in the
supplier's next statement, marked late, so an approved statement never changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from selfmart.audit import service as audit
from selfmart.catalog.labels import labels as product_labels
from selfmart.errors import ErrorDetail, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import queries as ledger
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import Supplier, SupplierStatement, SupplierStatementLine
from selfmart.purchasing import purchase_orders, suppliers
from selfmart.purchasing.common import check_transition, new_number
from selfmart.settlement.exceptions import (
    ChainWideOnly,
    EarlierStatementOpen,
    PeriodNotOver,
    StatementNotFound,
    StatementOverlaps,
)
from selfmart.stores import service as stores

STATUSES = ("draft", "reviewed", "approved", "paid")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("reviewed",),
    "reviewed": ("approved", "draft"),
    "approved": ("paid",),
    "paid": (),
}
#: a statement still open to change (regenerate, delete)
OPEN = ("draft", "reviewed")
FROZEN = ("approved", "paid")
KINDS = ("received", "sold", "returned", "shrinkage")
SHRINKAGE_KINDS = ("stocktake_loss", "stocktake_gain", "write_off")
SALE_KINDS = ("sale", "customer_return")
#: the longest period one statement may cover
MAX_DAYS = 366
FIELDS = ("status", "goods_fen", "returns_fen", "shrinkage_fen", "total_fen")


def require_chain_wide(actor: Actor) -> None:
    if actor.store_ids is not None:
        raise ChainWideOnly()


@dataclass(frozen=True, slots=True)
class Line:
    kind: str
    product_id: int
    quantity: int
    unit_cost_fen: int
    late: bool

    @property
    def amount_fen(self) -> int:
        sign = -1 if self.kind == "returned" else 1
        return sign * self.quantity * self.unit_cost_fen


def _bounds(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


async def _windows(session: AsyncSession, start: date, end: date) -> list[ledger.Window]:
    """[start, end] as one time window per time zone the stores are in."""
    by_zone: dict[str, list[int]] = {}
    for sid, zone in (await stores.zones(session)).items():
        by_zone.setdefault(zone, []).append(sid)
    return [
        ledger.Window(ids, _bounds(start, zone), _bounds(end + timedelta(days=1), zone))
        for zone, ids in sorted(by_zone.items())
    ]


async def compute(
    session: AsyncSession,
    supplier: Supplier,
    start: date,
    end: date,
    *,
    up_to_id: int,
    late_from: date | None = None,
    late_after_id: int | None = None,
) -> list[Line]:
    """The statement's lines: per kind, product, unit cost and lateness, units and money."""
    windows = await _windows(session, start, end)
    late_windows = (
        await _windows(session, late_from, start - timedelta(days=1))
        if late_from is not None and late_from < start
        else []
    )
    window_args: dict[str, Any] = {
        "windows": windows,
        "up_to_id": up_to_id,
        "late_since": late_windows,
        "late_after_id": late_after_id,
    }
    units: dict[tuple[str, int, int, bool], int] = {}

    def add(kind: str, product_id: int, cost: int, late: bool, quantity: int) -> None:
        key = (kind, product_id, cost, late)
        units[key] = units.get(key, 0) + quantity

    if supplier.settlement_basis == "received":
        costs = await purchase_orders.received_costs(session, supplier.id)
        orders = sorted({po for po, _ in costs})
        if orders:
            for m in await ledger.movement_sums(
                session,
                kinds=("purchase_receipt",),
                document_type="purchase_order",
                document_ids=[str(po) for po in orders],
                **window_args,
            ):
                cost = costs.get((int(m.document_id or 0), m.product_id))
                if cost is not None:
                    add("received", m.product_id, cost, m.late, m.quantity)
        returned = await ledger.movement_sums(
            session,
            kinds=("supplier_return",),
            document_type="supplier",
            document_ids=[str(supplier.id)],
            **window_args,
        )
        ret_costs = await suppliers.costs(session, supplier.id, [m.product_id for m in returned])
        for m in returned:
            add("returned", m.product_id, ret_costs[m.product_id], m.late, -m.quantity)
    settled = await suppliers.products_settled_with(session, supplier.id)
    if supplier.settlement_basis == "consignment" and settled:
        for m in await ledger.movement_sums(
            session, kinds=SALE_KINDS, product_ids=list(settled), **window_args
        ):
            add("sold", m.product_id, settled[m.product_id], m.late, -m.quantity)
    # Shrinkage is charged to the supplier under `received` when it bears it (a deduction),
    # and owed to it under consignment when we bear it (a line we pay).
    shrink_sign = 0
    if supplier.settlement_basis == "received" and supplier.shrinkage_borne:
        shrink_sign = -1
    elif supplier.settlement_basis == "consignment" and not supplier.shrinkage_borne:
        shrink_sign = 1
    if shrink_sign and settled:
        for m in await ledger.movement_sums(
            session, kinds=SHRINKAGE_KINDS, product_ids=list(settled), **window_args
        ):
            # Net per product: a gain found at a later count gives back an earlier loss.
            add("shrinkage", m.product_id, settled[m.product_id], m.late, -m.quantity)
    lines: list[Line] = []
    for (kind, pid, cost, late), qty in sorted(units.items()):
        if qty <= 0:
            continue  # nothing sold net, or a net gain: nothing to charge either way
        if kind == "shrinkage":
            lines.append(Line(kind, pid, shrink_sign * qty, cost, late))
        else:
            lines.append(Line(kind, pid, qty, cost, late))
    return lines


def _totals(stmt: SupplierStatement, lines: Sequence[Line]) -> None:
    stmt.goods_fen = sum(ln.amount_fen for ln in lines if ln.kind in ("received", "sold"))
    stmt.returns_fen = sum(ln.amount_fen for ln in lines if ln.kind == "returned")
    stmt.shrinkage_fen = sum(ln.amount_fen for ln in lines if ln.kind == "shrinkage")
    stmt.total_fen = stmt.goods_fen + stmt.returns_fen + stmt.shrinkage_fen


async def _fill(session: AsyncSession, stmt: SupplierStatement, supplier: Supplier) -> None:
    """(Re)compute the statement's lines from the ledger as it is now."""
    previous = await session.scalar(
        select(SupplierStatement)
        .where(
            SupplierStatement.supplier_id == supplier.id,
            SupplierStatement.period_end < stmt.period_start,
        )
        .order_by(SupplierStatement.period_end.desc())
        .limit(1)
    )
    watermark = await ledger.last_movement_id(session)
    lines = await compute(
        session,
        supplier,
        stmt.period_start,
        stmt.period_end,
        up_to_id=watermark,
        late_from=None if previous is None else previous.period_start,
        late_after_id=None if previous is None else previous.movement_watermark,
    )
    names = await product_labels(session, sorted({ln.product_id for ln in lines}))
    stmt.basis = supplier.settlement_basis
    stmt.shrinkage_borne = supplier.shrinkage_borne
    stmt.movement_watermark = watermark
    stmt.generated_at = utcnow()
    stmt.lines = [
        SupplierStatementLine(
            kind=ln.kind,
            product_id=ln.product_id,
            product_name=names[ln.product_id].name if ln.product_id in names else "",
            quantity=ln.quantity,
            unit_cost_fen=ln.unit_cost_fen,
            amount_fen=ln.amount_fen,
            late=ln.late,
        )
        for ln in lines
    ]
    _totals(stmt, lines)


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise ValidationFailed("The period ends before it starts", field="period_end")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationFailed(f"A statement covers at most {MAX_DAYS} days", field="period_end")


async def generate(
    session: AsyncSession,
    supplier_id: int,
    start: date,
    end: date,
    *,
    note: str = "",
    actor: Actor,
) -> SupplierStatement:
    """A draft statement for the period. The supplier's row is locked first, so that two
    statements made at once for overlapping periods cannot both pass the overlap check."""
    require_chain_wide(actor)
    _check_period(start, end)
    supplier = await suppliers.get_supplier(session, supplier_id, for_update=True)
    clash = await session.scalar(
        select(SupplierStatement)
        .where(
            SupplierStatement.supplier_id == supplier.id,
            SupplierStatement.period_start <= end,
            SupplierStatement.period_end >= start,
        )
        .limit(1)
    )
    if clash is not None:
        raise StatementOverlaps(
            f"Statement {clash.number} already covers {clash.period_start} to {clash.period_end}",
            details=[
                ErrorDetail(
                    field="period_start",
                    reason="statement_overlaps",
                    message=f"{clash.number}: {clash.period_start}..{clash.period_end}",
                )
            ],
        )
    earlier_open = await session.scalar(
        select(SupplierStatement.number).where(
            SupplierStatement.supplier_id == supplier.id,
            SupplierStatement.period_end < start,
            SupplierStatement.status.in_(OPEN),
        )
    )
    if earlier_open is not None:
        raise EarlierStatementOpen(
            f"Statement {earlier_open} of an earlier period is not approved yet",
            field="period_start",
        )
    now = utcnow()
    stmt = SupplierStatement(
        number=new_number("ST"),
        supplier_id=supplier.id,
        period_start=start,
        period_end=end,
        status="draft",
        basis=supplier.settlement_basis,
        shrinkage_borne=supplier.shrinkage_borne,
        note=note,
        created_at=now,
        created_by=actor.name,
        generated_at=now,
        movement_watermark=0,
    )
    await _fill(session, stmt, supplier)
    session.add(stmt)
    await session.flush()
    await audit.record(
        session,
        actor,
        "supplier_statement.generate",
        "supplier_statement",
        stmt.id,
        after={
            **audit.snapshot(stmt, FIELDS),
            "supplier_id": supplier.id,
            "period": f"{start}..{end}",
            "lines": len(stmt.lines),
        },
        label=f"{stmt.number} {supplier.name}",
    )
    return stmt


async def get_statement(
    session: AsyncSession, statement_id: int, *, actor: Actor, for_update: bool = False
) -> SupplierStatement:
    require_chain_wide(actor)
    q = (
        select(SupplierStatement)
        .where(SupplierStatement.id == statement_id)
        .options(selectinload(SupplierStatement.lines))
    )
    if for_update:
        # populate_existing: a second approver blocked on the lock must see the first's result
        q = q.with_for_update(of=SupplierStatement).execution_options(populate_existing=True)
    stmt = await session.scalar(q)
    if stmt is None:
        raise StatementNotFound(field="statement_id")
    return stmt


async def list_statements(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    supplier_id: int | None = None,
    status: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> tuple[list[tuple[SupplierStatement, str]], int]:
    require_chain_wide(actor)
    q = select(SupplierStatement, Supplier.name).join(
        Supplier, Supplier.id == SupplierStatement.supplier_id
    )
    if supplier_id is not None:
        q = q.where(SupplierStatement.supplier_id == supplier_id)
    if status is not None:
        q = q.where(SupplierStatement.status == status)
    if date_from is not None:
        q = q.where(SupplierStatement.period_end >= date_from)
    if date_to is not None:
        q = q.where(SupplierStatement.period_start <= date_to)
    total = await session.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
    rows = await session.execute(
        q.order_by(SupplierStatement.period_start.desc(), SupplierStatement.id.desc())
        .limit(params.size)
        .offset(params.offset)
    )
    return [(s, str(name)) for s, name in rows], int(total or 0)


async def supplier_name(session: AsyncSession, supplier_id: int) -> str:
    return (await suppliers.get_supplier(session, supplier_id)).name


async def _move(
    session: AsyncSession,
    stmt: SupplierStatement,
    target: str,
    *,
    actor: Actor,
    note: str | None = None,
    extra: dict[str, Any] | None = None,
) -> SupplierStatement:
    check_transition("Statement", stmt.number, stmt.status, target, TRANSITIONS)
    before = stmt.status
    stmt.status = target
    now = utcnow()
    if target == "reviewed":
        stmt.reviewed_at, stmt.reviewed_by = now, actor.name
    elif target == "approved":
        stmt.approved_at, stmt.approved_by = now, actor.name
    elif target == "paid":
        stmt.paid_at, stmt.paid_by = now, actor.name
    await session.flush()
    await audit.record(
        session,
        actor,
        f"supplier_statement.{target}",
        "supplier_statement",
        stmt.id,
        before={"status": before},
        after={"status": target, "total_fen": stmt.total_fen, **(extra or {})},
        note=note or None,
        label=stmt.number,
    )
    return stmt


async def review(
    session: AsyncSession, statement_id: int, *, actor: Actor, note: str = ""
) -> SupplierStatement:
    stmt = await get_statement(session, statement_id, actor=actor, for_update=True)
    return await _move(session, stmt, "reviewed", actor=actor, note=note)


async def approve(
    session: AsyncSession, statement_id: int, *, actor: Actor, note: str = ""
) -> SupplierStatement:
    """Freeze the statement: its lines and totals never change again. Only a reviewed one,
    and only once its period is over (else what it says could still move)."""
    stmt = await get_statement(session, statement_id, actor=actor, for_update=True)
    if stmt.status == "reviewed":
        zones = set((await stores.zones(session)).values()) or {"UTC"}
        if any(utcnow() < _bounds(stmt.period_end + timedelta(days=1), z) for z in zones):
            raise PeriodNotOver(
                f"Statement {stmt.number} covers days up to {stmt.period_end}: "
                "approve it once that day is over everywhere",
                field="period_end",
            )
    return await _move(session, stmt, "approved", actor=actor, note=note)


async def mark_paid(
    session: AsyncSession,
    statement_id: int,
    payment_reference: str,
    *,
    actor: Actor,
    note: str = "",
) -> SupplierStatement:
    stmt = await get_statement(session, statement_id, actor=actor, for_update=True)
    check_transition("Statement", stmt.number, stmt.status, "paid", TRANSITIONS)
    stmt.payment_reference = payment_reference
    return await _move(
        session,
        stmt,
        "paid",
        actor=actor,
        note=note,
        extra={"payment_reference": payment_reference},
    )


async def regenerate(
    session: AsyncSession, statement_id: int, *, actor: Actor
) -> SupplierStatement:
    """Work a draft or reviewed statement out again from the ledger as it is now (it goes
    back to draft: what was reviewed may have changed)."""
    stmt = await get_statement(session, statement_id, actor=actor, for_update=True)
    if stmt.status not in OPEN:
        check_transition("Statement", stmt.number, stmt.status, "draft", {})
    supplier = await suppliers.get_supplier(session, stmt.supplier_id, for_update=True)
    before = {**audit.snapshot(stmt, FIELDS), "lines": len(stmt.lines)}
    stmt.lines.clear()
    await session.flush()
    await _fill(session, stmt, supplier)
    stmt.status = "draft"
    stmt.reviewed_at = stmt.reviewed_by = None
    await session.flush()
    await audit.record(
        session,
        actor,
        "supplier_statement.regenerate",
        "supplier_statement",
        stmt.id,
        before=before,
        after={**audit.snapshot(stmt, FIELDS), "lines": len(stmt.lines)},
        label=stmt.number,
    )
    return stmt


async def delete_statement(session: AsyncSession, statement_id: int, *, actor: Actor) -> None:
    stmt = await get_statement(session, statement_id, actor=actor, for_update=True)
    if stmt.status not in OPEN:
        check_transition("Statement", stmt.number, stmt.status, "deleted", {})
    snapshot = {**audit.snapshot(stmt, FIELDS), "period": f"{stmt.period_start}..{stmt.period_end}"}
    await session.delete(stmt)
    await session.flush()
    await audit.record(
        session,
        actor,
        "supplier_statement.delete",
        "supplier_statement",
        stmt.id,
        before=snapshot,
        label=stmt.number,
    )
