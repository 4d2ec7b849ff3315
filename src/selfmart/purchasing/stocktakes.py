"""Stocktakes: count a store's shelves (all of it or some categories), see the variance, post
the gains and losses to the ledger.

An unmanned store keeps selling while people count, so each count is compared with the book
quantity at the moment it was entered (not at the start), and posting books exactly that
difference on top of whatever the balance has become since.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from selfmart.audit import service as audit
from selfmart.catalog import service as catalog
from selfmart.catalog.labels import UNKNOWN
from selfmart.catalog.labels import labels as product_labels
from selfmart.errors import ErrorDetail, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.inventory.queries import visible_store
from selfmart.kit.pagination import PageParams
from selfmart.kit.time import utcnow
from selfmart.models import Category, ProductBarcode, Stocktake, StocktakeLine
from selfmart.purchasing.common import check_transition, new_number, products_by_id
from selfmart.purchasing.schemas import CountsIn, StocktakeCreate

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "counting": ("posted", "cancelled"),
    "posted": (),
    "cancelled": (),
}
READ_FIELDS = (
    "id",
    "number",
    "store_id",
    "status",
    "category_ids",
    "note",
    "created_by",
    "created_at",
    "posted_at",
    "posted_by",
    "cancelled_at",
)


def in_scope(actor: Actor) -> list[ColumnElement[bool]]:
    if actor.store_ids is None:
        return []
    return [Stocktake.store_id.in_(actor.store_ids)]


async def list_stocktakes(
    session: AsyncSession,
    params: PageParams,
    *,
    actor: Actor,
    store_id: int | None = None,
    status: str | None = None,
) -> tuple[list[Stocktake], int]:
    stmt = select(Stocktake).where(*in_scope(actor))
    if store_id is not None:
        stmt = stmt.where(Stocktake.store_id == store_id)
    if status is not None:
        stmt = stmt.where(Stocktake.status == status)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    stmt = stmt.order_by(Stocktake.created_at.desc(), Stocktake.id.desc())
    rows = (await session.scalars(stmt.limit(params.size).offset(params.offset))).all()
    return list(rows), int(total or 0)


async def get_stocktake(
    session: AsyncSession, stocktake_id: int, *, actor: Actor, for_update: bool = False
) -> Stocktake:
    stmt = (
        select(Stocktake)
        .where(Stocktake.id == stocktake_id, *in_scope(actor))
        .options(selectinload(Stocktake.lines))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Stocktake)
    take = await session.scalar(stmt)
    if take is None:
        raise NotFound("No such stocktake", field="stocktake_id")
    return take


async def _products_in(
    session: AsyncSession, store_id: int, category_ids: Sequence[int]
) -> list[int]:
    """What the stocktake counts: products the store stocks or lists, in the categories."""
    ids = await inventory.stocked_products(session, store_id)
    if not category_ids or not ids:
        return ids
    found = set(
        (await session.scalars(select(Category.id).where(Category.id.in_(category_ids)))).all()
    )
    missing = sorted(set(category_ids) - found)
    if missing:
        raise NotFound("No such category: " + ", ".join(map(str, missing)), field="category_ids")
    in_categories = set(await catalog.product_ids_in_categories(session, category_ids))
    return [pid for pid in ids if pid in in_categories]


async def create_stocktake(
    session: AsyncSession, data: StocktakeCreate, *, actor: Actor
) -> Stocktake:
    """Open a stocktake with a line per product the store stocks or lists (in the chosen
    categories), showing the book quantity now as a guide."""
    await visible_store(session, data.store_id, actor)
    product_ids = await _products_in(session, data.store_id, data.category_ids)
    book = await inventory.balances(session, data.store_id, product_ids)
    take = Stocktake(
        number=new_number("ST"),
        store_id=data.store_id,
        status="counting",
        category_ids=list(data.category_ids),
        note=data.note,
        created_by=actor.name,
        lines=[StocktakeLine(product_id=pid, expected_qty=book[pid]) for pid in product_ids],
    )
    session.add(take)
    await session.flush()
    await audit.record(
        session,
        actor,
        "stocktake.create",
        "stocktake",
        take.id,
        store_id=take.store_id,
        after={"number": take.number, "lines": len(product_ids), "category_ids": data.category_ids},
    )
    return take


async def enter_counts(
    session: AsyncSession, stocktake_id: int, data: CountsIn, *, actor: Actor
) -> Stocktake:
    """Record counts, by product id or scanned barcode. A product not on the sheet (found on
    the shelf unexpectedly) gets a line. Counting again replaces the earlier count."""
    take = await get_stocktake(session, stocktake_id, actor=actor, for_update=True)
    # counts are entered only while counting: "posted -> counting" is the 409 otherwise
    check_transition("Stocktake", take.number, take.status, "counting", {"counting": ("counting",)})
    barcodes = [c.barcode for c in data.counts if c.barcode is not None]
    by_code: dict[str, int] = {}
    if barcodes:
        by_code = {
            str(code): int(pid)
            for code, pid in await session.execute(
                select(ProductBarcode.code, ProductBarcode.product_id).where(
                    ProductBarcode.code.in_(barcodes)
                )
            )
        }
    problems: list[ErrorDetail] = []
    resolved: list[tuple[int, int]] = []
    for i, c in enumerate(data.counts):
        if (c.product_id is None) == (c.barcode is None):
            problems.append(
                ErrorDetail(
                    field=f"counts[{i}]", reason="product_or_barcode", message="give one of them"
                )
            )
            continue
        pid = c.product_id if c.product_id is not None else by_code.get(str(c.barcode))
        if pid is None:
            problems.append(
                ErrorDetail(
                    field=f"counts[{i}].barcode", reason="unknown_barcode", message=c.barcode
                )
            )
            continue
        resolved.append((pid, c.counted_qty))
    if problems:
        raise ValidationFailed("Some counts cannot be entered", details=problems)
    await products_by_id(session, [pid for pid, _ in resolved])
    book = await inventory.balances(session, take.store_id, [pid for pid, _ in resolved])
    lines = {ln.product_id: ln for ln in take.lines}
    now = utcnow()
    for pid, qty in resolved:
        line = lines.get(pid)
        if line is None:
            line = StocktakeLine(product_id=pid, expected_qty=book[pid])
            take.lines.append(line)
            lines[pid] = line
        line.counted_qty = qty
        line.book_qty_at_count = book[pid]
        line.counted_at = now
        line.counted_by = actor.name
    await session.flush()
    await audit.record(
        session,
        actor,
        "stocktake.count",
        "stocktake",
        take.id,
        store_id=take.store_id,
        after={"counts": {str(pid): qty for pid, qty in resolved}},
    )
    return take


def variance(line: StocktakeLine) -> int | None:
    if line.counted_qty is None or line.book_qty_at_count is None:
        return None
    return line.counted_qty - line.book_qty_at_count


async def report(session: AsyncSession, take: Stocktake) -> dict[str, Any]:
    """The stocktake with each line's variance and its value at cost, and the totals."""
    products = await products_by_id(session, [ln.product_id for ln in take.lines])
    names = await product_labels(session, list(products))
    lines: list[dict[str, Any]] = []
    gains = losses = gain_qty = loss_qty = net_cost = counted = 0
    for ln in sorted(take.lines, key=lambda x: (products[x.product_id].name, x.product_id)):
        v = variance(ln)
        cost = None if v is None else v * products[ln.product_id].cost_fen
        if ln.counted_qty is not None:
            counted += 1
        if v:
            if v > 0:
                gains, gain_qty = gains + 1, gain_qty + v
            else:
                losses, loss_qty = losses + 1, loss_qty - v
            net_cost += cost or 0
        lines.append(
            {
                "product_id": ln.product_id,
                **names.get(ln.product_id, UNKNOWN).fields(),
                "expected_qty": ln.expected_qty,
                "counted_qty": ln.counted_qty,
                "book_qty_at_count": ln.book_qty_at_count,
                "variance": v,
                "variance_cost_fen": cost,
                "counted_at": ln.counted_at,
                "counted_by": ln.counted_by,
            }
        )
    return {
        **{c: getattr(take, c) for c in READ_FIELDS},
        "summary": {
            "lines": len(take.lines),
            "counted": counted,
            "gains": gains,
            "losses": losses,
            "gain_qty": gain_qty,
            "loss_qty": loss_qty,
            "net_cost_fen": net_cost,
        },
        "lines": lines,
    }


async def post(
    session: AsyncSession, stocktake_id: int, *, actor: Actor, uncounted: str = "ignore"
) -> Stocktake:
    """Book every variance as a stocktake gain or loss. With `uncounted="zero"`, products
    nobody counted are booked as counted zero now."""
    take = await get_stocktake(session, stocktake_id, actor=actor, for_update=True)
    check_transition("Stocktake", take.number, take.status, "posted", TRANSITIONS)
    now = utcnow()
    if uncounted == "zero":
        missing = [ln for ln in take.lines if ln.counted_qty is None]
        book = await inventory.balances(session, take.store_id, [ln.product_id for ln in missing])
        for ln in missing:
            ln.counted_qty = 0
            ln.book_qty_at_count = book[ln.product_id]
            ln.counted_at = now
            ln.counted_by = actor.name
    elif uncounted != "ignore":
        raise ValidationFailed("uncounted must be ignore or zero", field="uncounted")
    changes = []
    for ln in take.lines:
        v = variance(ln)
        if v:
            kind = "stocktake_gain" if v > 0 else "stocktake_loss"
            changes.append(inventory.Change(ln.product_id, v, kind, reason=take.number))
    if changes:
        await inventory.book(
            session,
            store_id=take.store_id,
            changes=changes,
            document=("stocktake", take.id),
            actor=actor,
            refuse_negative=False,
        )
    take.status = "posted"
    take.posted_at = now
    take.posted_by = actor.name
    await session.flush()
    await audit.record(
        session,
        actor,
        "stocktake.post",
        "stocktake",
        take.id,
        store_id=take.store_id,
        before={"status": "counting"},
        after={"status": "posted", "movements": len(changes)},
    )
    return take


async def cancel(session: AsyncSession, stocktake_id: int, *, actor: Actor) -> Stocktake:
    take = await get_stocktake(session, stocktake_id, actor=actor, for_update=True)
    check_transition("Stocktake", take.number, take.status, "cancelled", TRANSITIONS)
    take.status = "cancelled"
    take.cancelled_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        actor,
        "stocktake.cancel",
        "stocktake",
        take.id,
        store_id=take.store_id,
        before={"status": "counting"},
        after={"status": "cancelled"},
    )
    return take
