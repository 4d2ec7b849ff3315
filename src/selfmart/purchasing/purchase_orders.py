"""Purchase orders: draft -> submitted -> partially_received -> received -> closed, or cancelled.

Receiving books purchase receipts into the store's ledger (through the inventory service),
with expiry batches for products that track them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from selfmart.audit import service as audit
from selfmart.catalog.labels import UNKNOWN
from selfmart.catalog.labels import labels as product_labels
from selfmart.errors import ErrorDetail, IllegalTransition, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.inventory.queries import visible_store
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import PurchaseOrder, PurchaseOrderLine, Supplier, SupplierProduct
from selfmart.purchasing.common import (
    check_transition,
    new_number,
    no_duplicates,
    products_by_id,
)
from selfmart.purchasing.schemas import POCreate, POLineIn, POReceive, POUpdate

STATUSES = ("draft", "submitted", "partially_received", "received", "closed", "cancelled")
#: The one place the purchase order's life is written down.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("submitted", "cancelled"),
    "submitted": ("partially_received", "received", "cancelled"),
    "partially_received": ("partially_received", "received", "closed"),
    "received": ("closed",),
    "closed": (),
    "cancelled": (),
}
#: Orders still expected to bring goods (counted as "on order" by reorder suggestions).
OPEN_STATUSES = ("draft", "submitted", "partially_received")
FIELDS = ("status", "expected_on", "note", "total_fen")
READ_FIELDS = (
    "id",
    "number",
    "store_id",
    "supplier_id",
    "status",
    "expected_on",
    "note",
    "total_fen",
    "created_by",
    "created_at",
    "submitted_at",
    "received_at",
    "closed_at",
    "cancelled_at",
)


def in_scope(actor: Actor) -> list[ColumnElement[bool]]:
    """The store filter for the actor, applied in the query."""
    if actor.store_ids is None:
        return []
    return [PurchaseOrder.store_id.in_(actor.store_ids)]


async def list_orders(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    store_id: int | None = None,
    status: str | None = None,
    supplier_id: int | None = None,
    q: str | None = None,
) -> tuple[list[tuple[PurchaseOrder, str]], int]:
    stmt = (
        select(PurchaseOrder, Supplier.name)
        .join(Supplier, Supplier.id == PurchaseOrder.supplier_id)
        .where(*in_scope(actor))
    )
    if store_id is not None:
        stmt = stmt.where(PurchaseOrder.store_id == store_id)
    if status is not None:
        stmt = stmt.where(PurchaseOrder.status == status)
    if supplier_id is not None:
        stmt = stmt.where(PurchaseOrder.supplier_id == supplier_id)
    if q:
        stmt = stmt.where(PurchaseOrder.number.like(f"%{q.strip().upper()}%"))
    stmt = stmt.order_by(PurchaseOrder.created_at.desc(), PurchaseOrder.id.desc())
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.execute(stmt.limit(params.size).offset(params.offset))).all()
    return [(po, str(name)) for po, name in rows], int(total or 0)


async def get_order(
    session: AsyncSession, po_id: int, *, actor: Actor, for_update: bool = False
) -> PurchaseOrder:
    """The order with its lines, if in a store the actor sees (else a 404)."""
    stmt = (
        select(PurchaseOrder)
        .where(PurchaseOrder.id == po_id, *in_scope(actor))
        .options(selectinload(PurchaseOrder.lines))
    )
    if for_update:
        stmt = stmt.with_for_update(of=PurchaseOrder)
    po = await session.scalar(stmt)
    if po is None:
        raise NotFound("No such purchase order", field="purchase_order_id")
    return po


async def detail(session: AsyncSession, po: PurchaseOrder) -> dict[str, Any]:
    supplier_name = await session.scalar(select(Supplier.name).where(Supplier.id == po.supplier_id))
    names = await product_labels(session, [ln.product_id for ln in po.lines])
    return {
        **{c: getattr(po, c) for c in READ_FIELDS},
        "supplier_name": supplier_name or "",
        "lines": [
            {
                "id": ln.id,
                "product_id": ln.product_id,
                **names.get(ln.product_id, UNKNOWN).fields(),
                "quantity_ordered": ln.quantity_ordered,
                "quantity_received": ln.quantity_received,
                "cost_fen": ln.cost_fen,
                "amount_fen": ln.cost_fen * ln.quantity_ordered,
            }
            for ln in po.lines
        ],
    }


async def _lines(
    session: AsyncSession, supplier_id: int, lines: Sequence[POLineIn]
) -> list[PurchaseOrderLine]:
    no_duplicates([ln.product_id for ln in lines])
    products = await products_by_id(session, [ln.product_id for ln in lines])
    costs = dict(
        (
            await session.execute(
                select(SupplierProduct.product_id, SupplierProduct.cost_fen).where(
                    SupplierProduct.supplier_id == supplier_id,
                    SupplierProduct.product_id.in_(list(products)),
                )
            )
        ).all()
    )
    return [
        PurchaseOrderLine(
            product_id=ln.product_id,
            quantity_ordered=ln.quantity,
            quantity_received=0,
            cost_fen=(
                ln.cost_fen
                if ln.cost_fen is not None
                else int(costs.get(ln.product_id, products[ln.product_id].cost_fen))
            ),
        )
        for ln in lines
    ]


def _line_snapshot(lines: Sequence[PurchaseOrderLine]) -> dict[str, list[int]]:
    """The lines as the audit log keeps them: product id -> [quantity, cost in fen]."""
    return {str(ln.product_id): [ln.quantity_ordered, ln.cost_fen] for ln in lines}


def _total(lines: Sequence[PurchaseOrderLine]) -> int:
    return sum(ln.cost_fen * ln.quantity_ordered for ln in lines)


async def create_order(
    session: AsyncSession,
    data: POCreate,
    *,
    actor: Actor,
    audit_note: str | None = None,
) -> PurchaseOrder:
    await visible_store(session, data.store_id, actor)
    supplier = await session.get(Supplier, data.supplier_id)
    if supplier is None:
        raise NotFound("No such supplier", field="supplier_id")
    if supplier.status != "active":
        raise ValidationFailed("The supplier is inactive", field="supplier_id")
    lines = await _lines(session, supplier.id, data.lines)
    po = PurchaseOrder(
        number=new_number("PO"),
        store_id=data.store_id,
        supplier_id=supplier.id,
        status="draft",
        expected_on=data.expected_on,
        note=data.note,
        total_fen=_total(lines),
        created_by=actor.name,
        lines=lines,
    )
    session.add(po)
    await session.flush()
    await audit.record(
        session,
        actor,
        "purchase_order.create",
        "purchase_order",
        po.id,
        store_id=po.store_id,
        after={**audit.snapshot(po, FIELDS), "number": po.number, "lines": len(lines)},
        note=audit_note,
    )
    return po


async def update_order(
    session: AsyncSession, po_id: int, data: POUpdate, *, actor: Actor
) -> PurchaseOrder:
    """Change a draft: its lines (replaced as a whole; cost defaults as on creation), expected
    date, note. Once submitted the lines are what the supplier was sent: a 409 naming both
    states."""
    po = await get_order(session, po_id, actor=actor, for_update=True)
    if po.status != "draft":
        raise IllegalTransition(
            f"Purchase order {po.number} is {po.status}; only a draft can be edited",
            details=[
                ErrorDetail(field="status", reason="illegal_transition", message=po.status),
                ErrorDetail(field="target_status", reason="illegal_transition", message="draft"),
            ],
        )
    before = audit.snapshot(po, FIELDS)
    changes = data.model_dump(exclude_unset=True)
    if data.lines is not None:
        before["lines"] = _line_snapshot(po.lines)
        po.lines.clear()
        await session.flush()
        po.lines.extend(await _lines(session, po.supplier_id, data.lines))
        po.total_fen = _total(po.lines)
    if "expected_on" in changes:
        po.expected_on = data.expected_on
    if data.note is not None:
        po.note = data.note
    await session.flush()
    await audit.record(
        session,
        actor,
        "purchase_order.update",
        "purchase_order",
        po.id,
        store_id=po.store_id,
        before=before,
        after={
            **audit.snapshot(po, FIELDS),
            **({"lines": _line_snapshot(po.lines)} if data.lines is not None else {}),
        },
    )
    return po


async def _move(
    session: AsyncSession, po: PurchaseOrder, target: str, *, actor: Actor, note: str | None
) -> PurchaseOrder:
    check_transition("Purchase order", po.number, po.status, target, TRANSITIONS)
    before = po.status
    po.status = target
    now = utcnow()
    if target == "submitted":
        po.submitted_at = now
    elif target == "received":
        po.received_at = now
    elif target == "closed":
        po.closed_at = now
    elif target == "cancelled":
        po.cancelled_at = now
    await session.flush()
    await audit.record(
        session,
        actor,
        f"purchase_order.{target}" if target != "partially_received" else "purchase_order.receive",
        "purchase_order",
        po.id,
        store_id=po.store_id,
        before={"status": before},
        after={"status": target},
        note=note or None,
    )
    return po


async def submit(session: AsyncSession, po_id: int, *, actor: Actor) -> PurchaseOrder:
    po = await get_order(session, po_id, actor=actor, for_update=True)
    return await _move(session, po, "submitted", actor=actor, note=None)


async def cancel(
    session: AsyncSession, po_id: int, *, actor: Actor, note: str = ""
) -> PurchaseOrder:
    po = await get_order(session, po_id, actor=actor, for_update=True)
    return await _move(session, po, "cancelled", actor=actor, note=note)


async def close(
    session: AsyncSession, po_id: int, *, actor: Actor, note: str = ""
) -> PurchaseOrder:
    """Close an order: received in full, or received in part with the rest never coming."""
    po = await get_order(session, po_id, actor=actor, for_update=True)
    return await _move(session, po, "closed", actor=actor, note=note)


async def receive(
    session: AsyncSession, po_id: int, data: POReceive, *, actor: Actor
) -> PurchaseOrder:
    """Book what arrived. Each line may bring at most what is still outstanding; the order
    becomes received when every line is complete, partially_received otherwise."""
    po = await get_order(session, po_id, actor=actor, for_update=True)
    if po.status not in ("submitted", "partially_received"):
        check_transition("Purchase order", po.number, po.status, "partially_received", TRANSITIONS)
    by_product = {ln.product_id: ln for ln in po.lines}
    problems: list[ErrorDetail] = []
    for i, ln in enumerate(data.lines):
        line = by_product.get(ln.product_id)
        if line is None:
            problems.append(
                ErrorDetail(
                    field=f"lines[{i}].product_id",
                    reason="not_on_order",
                    message=f"product {ln.product_id} is not on this order",
                )
            )
            continue
        outstanding = line.quantity_ordered - line.quantity_received
        if ln.quantity > outstanding:
            problems.append(
                ErrorDetail(
                    field=f"lines[{i}].quantity",
                    reason="more_than_outstanding",
                    message=f"product {ln.product_id}: {outstanding} outstanding",
                )
            )
    no_duplicates([ln.product_id for ln in data.lines])
    if problems:
        raise ValidationFailed("Some lines cannot be received", details=problems)
    await inventory.receive(
        session,
        store_id=po.store_id,
        lines=[
            inventory.ReceiptLine(ln.product_id, ln.quantity, ln.expiry_date, ln.batch_no)
            for ln in data.lines
        ],
        document=("purchase_order", po.id),
        actor=actor,
    )
    for ln in data.lines:
        by_product[ln.product_id].quantity_received += ln.quantity
    done = all(ln.quantity_received >= ln.quantity_ordered for ln in po.lines)
    summary = ", ".join(f"{ln.product_id}x{ln.quantity}" for ln in data.lines)
    return await _move(
        session,
        po,
        "received" if done else "partially_received",
        actor=actor,
        note=f"received {summary} {data.note}".strip(),
    )


async def on_order(
    session: AsyncSession, store_id: int, product_ids: Sequence[int]
) -> dict[int, int]:
    """Units ordered and not yet received, per product, for a store."""
    rows = await session.execute(
        select(
            PurchaseOrderLine.product_id,
            func.sum(PurchaseOrderLine.quantity_ordered - PurchaseOrderLine.quantity_received),
        )
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(
            PurchaseOrder.store_id == store_id,
            PurchaseOrder.status.in_(OPEN_STATUSES),
            PurchaseOrderLine.product_id.in_(list(product_ids)),
        )
        .group_by(PurchaseOrderLine.product_id)
    )
    found = {int(pid): int(q or 0) for pid, q in rows}
    return {pid: found.get(pid, 0) for pid in product_ids}


async def received_costs(session: AsyncSession, supplier_id: int) -> dict[tuple[int, int], int]:
    """(purchase order id, product id) -> cost, over the supplier's orders that received
    goods: what its purchase receipts are worth."""
    rows = await session.execute(
        select(
            PurchaseOrderLine.purchase_order_id,
            PurchaseOrderLine.product_id,
            PurchaseOrderLine.cost_fen,
        )
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(
            PurchaseOrder.supplier_id == supplier_id,
            PurchaseOrder.status.in_(("partially_received", "received", "closed")),
            PurchaseOrderLine.quantity_received > 0,
        )
    )
    return {(int(po), int(pid)): int(cost) for po, pid, cost in rows}
