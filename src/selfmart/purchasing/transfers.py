"""Transfers between stores: a draft, shipped out of the source (in transit), received at the
target in one receipt or several (partially received until the last). What arrives may be less
than what left (lost on the way): the target books what arrived, the line keeps both figures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from selfmart.audit import service as audit
from selfmart.catalog.labels import UNKNOWN
from selfmart.catalog.labels import labels as product_labels
from selfmart.errors import ErrorDetail, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.inventory.queries import visible_store
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import StockTransfer, StockTransferLine, Store
from selfmart.purchasing.common import check_transition, new_number, no_duplicates, products_by_id
from selfmart.purchasing.schemas import TransferCreate, TransferReceive

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("in_transit", "cancelled"),
    "in_transit": ("partially_received", "received"),
    "partially_received": ("partially_received", "received"),
    "received": (),
    "cancelled": (),
}
#: States in which goods are on the way and a receipt may be booked.
RECEIVABLE = ("in_transit", "partially_received")
READ_FIELDS = (
    "id",
    "number",
    "from_store_id",
    "to_store_id",
    "status",
    "note",
    "created_by",
    "created_at",
    "shipped_at",
    "received_at",
    "cancelled_at",
)


def in_scope(actor: Actor) -> list[ColumnElement[bool]]:
    """A transfer is visible to whoever sees either of its stores."""
    if actor.store_ids is None:
        return []
    return [
        or_(
            StockTransfer.from_store_id.in_(actor.store_ids),
            StockTransfer.to_store_id.in_(actor.store_ids),
        )
    ]


async def list_transfers(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    store_id: int | None = None,
    status: str | None = None,
) -> tuple[list[StockTransfer], int]:
    stmt = select(StockTransfer).where(*in_scope(actor))
    if store_id is not None:
        stmt = stmt.where(
            or_(StockTransfer.from_store_id == store_id, StockTransfer.to_store_id == store_id)
        )
    if status is not None:
        stmt = stmt.where(StockTransfer.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    stmt = stmt.order_by(StockTransfer.created_at.desc(), StockTransfer.id.desc())
    rows = (await session.scalars(stmt.limit(params.size).offset(params.offset))).all()
    return list(rows), int(total or 0)


async def get_transfer(
    session: AsyncSession, transfer_id: int, *, actor: Actor, for_update: bool = False
) -> StockTransfer:
    stmt = (
        select(StockTransfer)
        .where(StockTransfer.id == transfer_id, *in_scope(actor))
        .options(selectinload(StockTransfer.lines))
    )
    if for_update:
        stmt = stmt.with_for_update(of=StockTransfer)
    transfer = await session.scalar(stmt)
    if transfer is None:
        raise NotFound("No such transfer", field="transfer_id")
    return transfer


async def detail(session: AsyncSession, transfer: StockTransfer) -> dict[str, Any]:
    names = await product_labels(session, [ln.product_id for ln in transfer.lines])
    return {
        **{c: getattr(transfer, c) for c in READ_FIELDS},
        "lines": [
            {
                "product_id": ln.product_id,
                **names.get(ln.product_id, UNKNOWN).fields(),
                "quantity": ln.quantity,
                "quantity_received": ln.quantity_received,
                "quantity_in_transit": (in_transit(ln) if transfer.status in RECEIVABLE else 0),
                "quantity_lost": in_transit(ln) if transfer.status == "received" else 0,
            }
            for ln in transfer.lines
        ],
    }


async def create_transfer(
    session: AsyncSession, data: TransferCreate, *, actor: Actor
) -> StockTransfer:
    if data.from_store_id == data.to_store_id:
        raise ValidationFailed("A transfer needs two different stores", field="to_store_id")
    await visible_store(session, data.from_store_id, actor)
    # The target may be any store of the chain: sending goods to a store you do not run is
    # normal; it must exist.
    if await session.get(Store, data.to_store_id) is None:
        raise NotFound("No such store", field="to_store_id")
    no_duplicates([ln.product_id for ln in data.lines])
    await products_by_id(session, [ln.product_id for ln in data.lines])
    transfer = StockTransfer(
        number=new_number("TR"),
        from_store_id=data.from_store_id,
        to_store_id=data.to_store_id,
        status="draft",
        note=data.note,
        created_by=actor.name,
        lines=[
            StockTransferLine(product_id=ln.product_id, quantity=ln.quantity) for ln in data.lines
        ],
    )
    session.add(transfer)
    await session.flush()
    await audit.record(
        session,
        actor,
        "transfer.create",
        "stock_transfer",
        transfer.id,
        store_id=transfer.from_store_id,
        after={"number": transfer.number, "status": "draft", "to_store_id": data.to_store_id},
    )
    return transfer


def in_transit(line: StockTransferLine) -> int:
    """Units of a shipped line not received yet."""
    return line.quantity - (line.quantity_received or 0)


async def _set_status(
    session: AsyncSession,
    transfer: StockTransfer,
    target: str,
    *,
    actor: Actor,
    store_id: int,
    received: dict[str, int] | None = None,
    note: str | None = None,
) -> None:
    check_transition("Transfer", transfer.number, transfer.status, target, TRANSITIONS)
    before = transfer.status
    transfer.status = target
    now = utcnow()
    if target == "in_transit":
        transfer.shipped_at = now
    elif target in ("received", "partially_received"):
        transfer.received_at = now
    elif target == "cancelled":
        transfer.cancelled_at = now
    await session.flush()
    await audit.record(
        session,
        actor,
        f"transfer.{target}",
        "stock_transfer",
        transfer.id,
        store_id=store_id,
        before={"status": before},
        after={"status": target} if received is None else {"status": target, "received": received},
        note=note,
    )


async def ship(session: AsyncSession, transfer_id: int, *, actor: Actor) -> StockTransfer:
    """Take the goods out of the source store (never below zero): the transfer is in transit."""
    transfer = await get_transfer(session, transfer_id, actor=actor, for_update=True)
    check_transition("Transfer", transfer.number, transfer.status, "in_transit", TRANSITIONS)
    await visible_store(session, transfer.from_store_id, actor)  # only the source ships
    await inventory.book(
        session,
        store_id=transfer.from_store_id,
        changes=[
            inventory.Change(ln.product_id, -ln.quantity, "transfer_out") for ln in transfer.lines
        ],
        document=("transfer", transfer.id),
        actor=actor,
        refuse_negative=True,
    )
    await _set_status(session, transfer, "in_transit", actor=actor, store_id=transfer.from_store_id)
    return transfer


async def receive(
    session: AsyncSession, transfer_id: int, data: TransferReceive, *, actor: Actor
) -> StockTransfer:
    """Book what arrives now into the target store, as `transfer_in` movements.

    A partial receipt books the listed quantities and leaves the rest in transit; a final one
    (the default) also brings whatever is still in transit on the lines left out, and closes
    the transfer with any shortfall on the listed lines recorded as lost. No line may receive
    more than is still in transit on it. The transfer row is locked first, so two receipts of
    the same transfer take turns and the second sees what the first booked.
    """
    transfer = await get_transfer(session, transfer_id, actor=actor, for_update=True)
    if transfer.status not in RECEIVABLE:
        check_transition("Transfer", transfer.number, transfer.status, "received", TRANSITIONS)
    await visible_store(session, transfer.to_store_id, actor)  # only the target receives
    no_duplicates([ln.product_id for ln in data.lines])
    by_product = {ln.product_id: ln for ln in transfer.lines}
    arriving: dict[int, int] = {}
    problems: list[ErrorDetail] = []
    for i, ln in enumerate(data.lines):
        line = by_product.get(ln.product_id)
        if line is None:
            problems.append(
                ErrorDetail(
                    field=f"lines[{i}].product_id",
                    reason="not_on_transfer",
                    message=f"product {ln.product_id} is not on this transfer",
                )
            )
        elif ln.quantity > in_transit(line):
            problems.append(
                ErrorDetail(
                    field=f"lines[{i}].quantity",
                    reason="more_than_in_transit",
                    message=f"product {ln.product_id}: {in_transit(line)} in transit",
                )
            )
        else:
            arriving[ln.product_id] = ln.quantity
    if problems:
        raise ValidationFailed("Some lines cannot be received", details=problems)
    if not data.partial:
        for line in transfer.lines:
            arriving.setdefault(line.product_id, in_transit(line))
    elif not any(arriving.values()):
        raise ValidationFailed(
            "A partial receipt needs at least one unit on one line",
            details=[ErrorDetail(field="lines", reason="nothing_received")],
        )
    changes = [
        inventory.Change(pid, qty, "transfer_in")
        for pid, qty in sorted(arriving.items())
        if qty > 0
    ]
    if changes:
        await inventory.book(
            session,
            store_id=transfer.to_store_id,
            changes=changes,
            document=("transfer", transfer.id),
            actor=actor,
            refuse_negative=False,
        )
    for line in transfer.lines:
        line.quantity_received = (line.quantity_received or 0) + arriving.get(line.product_id, 0)
    complete = all(line.quantity_received == line.quantity for line in transfer.lines)
    await _set_status(
        session,
        transfer,
        "received" if complete or not data.partial else "partially_received",
        actor=actor,
        store_id=transfer.to_store_id,
        received={str(pid): qty for pid, qty in sorted(arriving.items()) if qty > 0},
        note=data.note or None,
    )
    return transfer


async def cancel(session: AsyncSession, transfer_id: int, *, actor: Actor) -> StockTransfer:
    transfer = await get_transfer(session, transfer_id, actor=actor, for_update=True)
    await visible_store(session, transfer.from_store_id, actor)
    await _set_status(session, transfer, "cancelled", actor=actor, store_id=transfer.from_store_id)
    return transfer
