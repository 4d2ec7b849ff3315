"""The inventory service: every stock change other domains and the console may make.

Each function works inside the caller's transaction (it never commits), books the balance and
its ledger movements together, and keeps low-stock alerts in step. Other domains call:

    from selfmart.inventory import service as inventory
    result = await inventory.deduct_for_sale(session, store_id=..., lines=[(pid, qty)], ...)
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, false, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from selfmart.audit import service as audit
from selfmart.catalog.labels import Label
from selfmart.catalog.labels import labels as product_labels
from selfmart.errors import ErrorDetail, InsufficientStock, NotFound, ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import alerts, ledger
from selfmart.inventory.ledger import Booked, Document
from selfmart.inventory.queries import visible_store
from selfmart.kit.time import utcnow
from selfmart.models import (
    Product,
    StockBatch,
    StockDiscrepancy,
    StockLevel,
    Store,
    StoreProduct,
)

__all__ = [
    "Booked",
    "Change",
    "DeductionResult",
    "Document",
    "LineResult",
    "ReceiptLine",
    "adjust",
    "balances",
    "stocked_products",
    "stock_state_condition",
    "STOCK_STATES",
    "thresholds",
    "book",
    "deduct_for_sale",
    "receive",
    "receive_direct",
    "restock_for_return",
    "store_allows_negative",
    "write_off",
]

_discrepancies = cast(Table, StockDiscrepancy.__table__)


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineResult:
    product_id: int
    requested: int
    #: units booked out of stock (requested, or 0 when the sale was refused)
    booked: int
    #: units the ledger did not have: with refusal the reason nothing was booked; with
    #: negative stock allowed, how far the sale went past the shelf
    short_by: int
    #: the balance after this sale (None when nothing was booked)
    balance_after: int | None


@dataclass(frozen=True, slots=True)
class DeductionResult:
    #: every line booked (always True when negative stock is allowed)
    ok: bool
    lines: list[LineResult] = field(default_factory=list)

    @property
    def short_lines(self) -> list[LineResult]:
        """Lines the shelf could not cover: refused, or booked past zero (raise an abnormal
        order for these)."""
        return [ln for ln in self.lines if ln.short_by > 0]

    def raise_if_refused(self) -> None:
        """Raise InsufficientStock (409) naming each short product, if the sale was refused."""
        if self.ok:
            return
        raise InsufficientStock(
            "Not enough stock for " + ", ".join(str(ln.product_id) for ln in self.short_lines),
            details=[
                ErrorDetail(
                    field=f"product:{ln.product_id}",
                    reason="insufficient_stock",
                    message=f"short by {ln.short_by}",
                )
                for ln in self.short_lines
            ],
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One signed change to book: used by purchasing, transfers and stocktakes."""

    product_id: int
    delta: int
    kind: str
    reason: str | None = None
    batch_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    product_id: int
    quantity: int
    #: for products that track batches; defaults to today + the product's shelf life
    expiry_date: date | None = None
    batch_no: str = ""


# --- helpers -------------------------------------------------------------------------------


def _merge(lines: Sequence[tuple[int, int]], what: str = "lines") -> dict[int, int]:
    """Sum quantities per product; refuse zero, negative or non-integer quantities."""
    merged: dict[int, int] = {}
    for i, (product_id, qty) in enumerate(lines):
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise ValidationFailed(
                "Quantities must be whole numbers above zero", field=f"{what}[{i}].quantity"
            )
        merged[product_id] = merged.get(product_id, 0) + qty
    return merged


async def _require_products(session: AsyncSession, product_ids: Sequence[int]) -> None:
    wanted = set(product_ids)
    if not wanted:
        return
    found = set((await session.scalars(select(Product.id).where(Product.id.in_(wanted)))).all())
    missing = sorted(wanted - found)
    if missing:
        raise NotFound(
            "No such product: " + ", ".join(map(str, missing)),
            details=[
                ErrorDetail(field="product_id", reason="not_found", message=str(pid))
                for pid in missing
            ],
        )


async def store_allows_negative(session: AsyncSession, store_id: int) -> bool:
    """The store's oversell setting (unmanned stores book the sale even past an empty shelf)."""
    value = await session.scalar(select(Store.allow_negative_stock).where(Store.id == store_id))
    if value is None:
        raise NotFound("No such store", field="store_id")
    return bool(value)


async def balances(
    session: AsyncSession, store_id: int, product_ids: Sequence[int]
) -> dict[int, int]:
    """Current balances (0 for a product never stocked in the store)."""
    return await ledger.current(session, store_id, product_ids)


# --- the hot path: a sale ------------------------------------------------------------------


async def deduct_for_sale(
    session: AsyncSession,
    *,
    store_id: int,
    lines: Sequence[tuple[int, int]],
    document: Document,
    actor: Actor,
    allow_negative: bool,
    occurred_at: datetime | None = None,
) -> DeductionResult:
    """Book a sale out of stock, inside the caller's transaction.

    `lines` are (product_id, quantity); repeated products are summed. Products must exist.
    With `allow_negative` False, each line is a conditional `quantity >= n` update: if any
    line is short, nothing stays booked, no movement is written, and the result has `ok=False`
    with each line's `short_by` (call `raise_if_refused()` for a 409). With `allow_negative`
    True every line is booked; a line that went past the shelf is reported in `short_by` and
    recorded as a stock discrepancy for follow-up.
    Cost on PostgreSQL: one statement for every line, balances and movements together
    (`ledger.sell_pg`); elsewhere one statement per line plus one INSERT for the movements.
    Balance rows are always changed in product-id order.
    """
    merged = _merge(lines)
    now = occurred_at or utcnow()
    done: list[Booked] = []
    short: dict[int, int] = {}
    written: list[int] = []  # movement ids already written (PostgreSQL path)
    pending: list[Booked] = []  # balances changed whose movement is still to be written
    sold: dict[int, tuple[Booked, int]] = {}
    if session.get_bind().dialect.name == "postgresql":
        sold = await ledger.sell_pg(
            session,
            store_id=store_id,
            lines=merged,
            refuse=not allow_negative,
            now=now,
            document=document,
            actor=actor,
        )
        for booked, movement_id in sold.values():
            done.append(booked)
            written.append(movement_id)
    for product_id in sorted(merged):
        if product_id in sold:
            continue
        # Not booked by the one statement: no balance row yet (never stocked here), or not
        # enough with refusal on; elsewhere than PostgreSQL, every line comes here.
        qty = merged[product_id]
        if allow_negative:
            booked = await ledger.add(session, store_id, product_id, -qty, now)
            done.append(booked)
            pending.append(booked)
            continue
        if sold:
            short[product_id] = qty  # the one statement already tried it under lock
            break
        got = await ledger.take(session, store_id, product_id, qty, now)
        if got is None:
            short[product_id] = qty
            break
        done.append(got)
        pending.append(got)

    if short:
        # Give back what this sale took (the rows are still ours), then report every line.
        for b in done:
            await ledger.add(session, store_id, b.product_id, -b.delta, now)
        await ledger.forget_movements(session, written)
        have = await ledger.current(session, store_id, list(merged))
        return DeductionResult(
            ok=False,
            lines=[
                LineResult(pid, qty, 0, max(0, qty - max(have[pid], 0)), None)
                for pid, qty in merged.items()
            ],
        )

    await ledger.write_movements(
        session,
        [
            ledger.movement_row(
                store_id=store_id, booked=b, kind="sale", document=document, actor=actor, now=now
            )
            for b in pending
        ],
    )
    results: list[LineResult] = []
    discrepancies: list[dict[str, Any]] = []
    for b in done:
        qty = -b.delta
        short_by = max(0, qty - max(b.balance_before, 0))
        results.append(LineResult(b.product_id, qty, qty, short_by, b.balance_after))
        if short_by:
            discrepancies.append(
                {
                    "store_id": store_id,
                    "product_id": b.product_id,
                    "document_type": document[0],
                    "document_id": str(document[1]),
                    "requested": qty,
                    "short_by": short_by,
                    "balance_after": b.balance_after,
                    "status": "open",
                    "created_at": now,
                }
            )
    if discrepancies:
        await session.execute(insert(_discrepancies).values(discrepancies))
    await alerts.after_booking(session, store_id, done, now)
    by_product = {r.product_id: r for r in results}
    return DeductionResult(ok=True, lines=[by_product[pid] for pid in merged])


# --- everything else -----------------------------------------------------------------------


async def book(
    session: AsyncSession,
    *,
    store_id: int,
    changes: Sequence[Change],
    document: Document | None,
    actor: Actor,
    refuse_negative: bool,
    occurred_at: datetime | None = None,
) -> list[Booked]:
    """Book signed changes and their movements; the general form behind every non-sale change.

    With `refuse_negative`, a change that would take a balance below zero raises
    InsufficientStock (409) naming the products, and nothing of this call stays booked.
    """
    now = occurred_at or utcnow()
    for c in changes:
        if c.delta == 0:
            raise ValidationFailed("A stock change cannot be zero", field="quantity")
    order = sorted(range(len(changes)), key=lambda i: changes[i].product_id)
    done: list[tuple[int, Booked]] = []
    refused: list[Change] = []
    for i in order:
        c = changes[i]
        got: Booked | None
        if refuse_negative and c.delta < 0:
            got = await ledger.take(session, store_id, c.product_id, -c.delta, now)
            if got is None:
                refused.append(c)
                break
        else:
            got = await ledger.add(session, store_id, c.product_id, c.delta, now)
        done.append((i, got))
    if refused:
        for _, b in done:
            await ledger.add(session, store_id, b.product_id, -b.delta, now)
        have = await ledger.current(session, store_id, [c.product_id for c in refused])
        raise InsufficientStock(
            "Not enough stock for product " + ", ".join(str(c.product_id) for c in refused),
            details=[
                ErrorDetail(
                    field="quantity",
                    reason="insufficient_stock",
                    message=f"product {c.product_id}: {have[c.product_id]} on hand, "
                    f"{-c.delta} needed",
                )
                for c in refused
            ],
        )
    await ledger.write_movements(
        session,
        [
            ledger.movement_row(
                store_id=store_id,
                booked=b,
                kind=changes[i].kind,
                document=document,
                actor=actor,
                now=now,
                reason=changes[i].reason,
                batch_id=changes[i].batch_id,
            )
            for i, b in sorted(done, key=lambda pair: pair[0])
        ],
    )
    await alerts.after_booking(session, store_id, [b for _, b in done], now)
    return [b for _, b in sorted(done, key=lambda pair: pair[0])]


async def restock_for_return(
    session: AsyncSession,
    *,
    store_id: int,
    lines: Sequence[tuple[int, int]],
    document: Document,
    actor: Actor,
) -> list[Booked]:
    """Put resellable returned goods back on the shelf (customer_return movements)."""
    merged = _merge(lines)
    return await book(
        session,
        store_id=store_id,
        changes=[Change(pid, qty, "customer_return") for pid, qty in merged.items()],
        document=document,
        actor=actor,
        refuse_negative=False,
    )


async def receive(
    session: AsyncSession,
    *,
    store_id: int,
    lines: Sequence[ReceiptLine],
    document: Document,
    actor: Actor,
    occurred_at: datetime | None = None,
) -> list[Booked]:
    """Book goods received (purchase_receipt movements). Products that track batches get a
    batch per line, with the given expiry date or today plus the product's shelf life."""
    _merge([(ln.product_id, ln.quantity) for ln in lines])
    await _require_products(session, [ln.product_id for ln in lines])
    now = occurred_at or utcnow()
    products = {
        p.id: p
        for p in (
            await session.scalars(
                select(Product).where(Product.id.in_({ln.product_id for ln in lines}))
            )
        ).all()
    }
    changes: list[Change] = []
    for i, ln in enumerate(lines):
        product = products[ln.product_id]
        batch_id: int | None = None
        if product.track_batches:
            expiry = ln.expiry_date
            if expiry is None and product.shelf_life_days:
                expiry = now.date() + timedelta(days=product.shelf_life_days)
            if expiry is None:
                raise ValidationFailed(
                    f"Product {product.id} tracks batches: give an expiry date",
                    field=f"lines[{i}].expiry_date",
                )
            batch = StockBatch(
                store_id=store_id,
                product_id=product.id,
                batch_no=ln.batch_no,
                expiry_date=expiry,
                quantity_received=ln.quantity,
                received_at=now,
                document_type=document[0],
                document_id=str(document[1]),
            )
            session.add(batch)
            await session.flush()
            batch_id = batch.id
        changes.append(Change(ln.product_id, ln.quantity, "purchase_receipt", batch_id=batch_id))
    return await book(
        session,
        store_id=store_id,
        changes=changes,
        document=document,
        actor=actor,
        refuse_negative=False,
        occurred_at=now,
    )


async def receive_direct(
    session: AsyncSession,
    *,
    store_id: int,
    lines: Sequence[ReceiptLine],
    actor: Actor,
    note: str = "",
) -> tuple[Document, list[Booked]]:
    """Goods received without a purchase order (a delivery booked at the door)."""
    await visible_store(session, store_id, actor)
    number = f"RC{utcnow():%Y%m%d%H%M%S}{secrets.token_hex(2).upper()}"
    document: Document = ("receipt", number)
    booked = await receive(session, store_id=store_id, lines=lines, document=document, actor=actor)
    for b in booked:
        await audit.record(
            session,
            actor,
            "stock.receive",
            "stock",
            f"{store_id}:{b.product_id}",
            store_id=store_id,
            before={"quantity": b.balance_before},
            after={"quantity": b.balance_after},
            note=f"{number} {note}".strip(),
        )
    return document, booked


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed("A reason is required", field="reason")
    if len(text) > 300:
        raise ValidationFailed("The reason is longer than 300 characters", field="reason")
    return text


async def adjust(
    session: AsyncSession,
    *,
    store_id: int,
    product_id: int,
    actor: Actor,
    reason: str,
    delta: int | None = None,
    set_to: int | None = None,
    document: Document | None = None,
    audit_action: str | None = "stock.adjust",
) -> Booked | None:
    """A manual correction: add `delta` or set the balance to `set_to` (under a row lock).

    Returns None when nothing changed (setting the balance it already has). Writes one audit
    entry unless `audit_action` is None (the caller audits).
    """
    why = _reason(reason)
    await visible_store(session, store_id, actor)
    if (delta is None) == (set_to is None):
        raise ValidationFailed("Give either delta or set_to", field="delta")
    if set_to is not None and set_to < 0:
        raise ValidationFailed("A balance cannot be set below zero", field="set_to")
    await _require_products(session, [product_id])
    before = (await ledger.lock(session, store_id, [product_id]))[product_id]
    change = delta if delta is not None else cast(int, set_to) - before
    if change == 0:
        if audit_action:  # asked and answered: the balance already is what was asked for
            await audit.record(
                session,
                actor,
                audit_action,
                "stock",
                f"{store_id}:{product_id}",
                store_id=store_id,
                note=f"{why} (no change)",
            )
        return None
    booked = (
        await book(
            session,
            store_id=store_id,
            changes=[Change(product_id, change, "adjustment", reason=why)],
            document=document,
            actor=actor,
            refuse_negative=False,
        )
    )[0]
    if audit_action:
        await audit.record(
            session,
            actor,
            audit_action,
            "stock",
            f"{store_id}:{product_id}",
            store_id=store_id,
            before={"quantity": booked.balance_before},
            after={"quantity": booked.balance_after},
            note=why,
        )
    return booked


async def write_off(
    session: AsyncSession,
    *,
    store_id: int,
    product_id: int,
    quantity: int,
    reason: str,
    actor: Actor,
    batch_id: int | None = None,
    document: Document | None = None,
) -> Booked:
    """Take damaged or expired goods off the books (write_off); never below zero."""
    why = _reason(reason)
    await visible_store(session, store_id, actor)
    _merge([(product_id, quantity)], "quantity")
    await _require_products(session, [product_id])
    booked = (
        await book(
            session,
            store_id=store_id,
            changes=[Change(product_id, -quantity, "write_off", reason=why, batch_id=batch_id)],
            document=document,
            actor=actor,
            refuse_negative=True,
        )
    )[0]
    await audit.record(
        session,
        actor,
        "stock.write_off",
        "stock",
        f"{store_id}:{product_id}",
        store_id=store_id,
        before={"quantity": booked.balance_before},
        after={"quantity": booked.balance_after},
        note=why if batch_id is None else f"{why} (batch {batch_id})",
    )
    return booked


# --- bulk set / adjust over a selection ----------------------------------------------------

#: The most products one bulk change may touch.
BULK_MAX = 1000
BULK_MODES = ("set", "adjust")


@dataclass(frozen=True, slots=True)
class BulkLine:
    product_id: int
    product_name: str
    before: int
    after: int
    spec: str = ""
    barcode: str | None = None

    @property
    def change(self) -> int:
        return self.after - self.before


def _plan(
    balances_now: dict[int, int], names: dict[int, Label], mode: str, value: int
) -> list[BulkLine]:
    if mode not in BULK_MODES:
        raise ValidationFailed("mode must be set or adjust", field="mode")
    if mode == "set" and value < 0:
        raise ValidationFailed("A balance cannot be set below zero", field="value")
    lines = [
        BulkLine(
            pid,
            names[pid].name,
            q,
            value if mode == "set" else q + value,
            names[pid].spec,
            names[pid].barcode,
        )
        for pid, q in sorted(balances_now.items())
    ]
    below = [ln for ln in lines if ln.after < 0]
    if below:
        raise ValidationFailed(
            "The change would take some balances below zero",
            details=[
                ErrorDetail(
                    field="value",
                    reason="below_zero",
                    message=f"product {ln.product_id}: {ln.before} on hand",
                )
                for ln in below
            ],
        )
    return lines


async def _bulk_selection(session: AsyncSession, product_ids: Sequence[int]) -> dict[int, Label]:
    ids = list(dict.fromkeys(product_ids))
    if not ids:
        raise ValidationFailed("Select at least one product", field="product_ids")
    if len(ids) > BULK_MAX:
        raise ValidationFailed(f"At most {BULK_MAX} products at once", field="product_ids")
    await _require_products(session, ids)
    return await product_labels(session, ids)


async def plan_bulk(
    session: AsyncSession,
    *,
    store_id: int,
    product_ids: Sequence[int],
    mode: str,
    value: int,
    actor: Actor,
) -> list[BulkLine]:
    """What a bulk set/adjust would do, changing nothing (the preview)."""
    await visible_store(session, store_id, actor)
    names = await _bulk_selection(session, product_ids)
    return _plan(await ledger.current(session, store_id, list(names)), names, mode, value)


async def apply_bulk(
    session: AsyncSession,
    *,
    store_id: int,
    product_ids: Sequence[int],
    mode: str,
    value: int,
    reason: str,
    actor: Actor,
) -> list[BulkLine]:
    """Set or adjust many balances at once, under row locks taken in product-id order: each
    change is an adjustment movement with the reason, and one audit entry per product."""
    why = _reason(reason)
    await visible_store(session, store_id, actor)
    names = await _bulk_selection(session, product_ids)
    lines = _plan(await ledger.lock(session, store_id, list(names)), names, mode, value)
    changed = [ln for ln in lines if ln.change]
    if changed:
        await book(
            session,
            store_id=store_id,
            changes=[Change(ln.product_id, ln.change, "adjustment", reason=why) for ln in changed],
            document=None,
            actor=actor,
            refuse_negative=False,
        )
    if not changed:
        await audit.record(
            session,
            actor,
            "stock.bulk_adjust",
            "stock",
            None,
            store_id=store_id,
            note=f"{why} (no change to {len(lines)} products)",
        )
    for ln in changed:
        await audit.record(
            session,
            actor,
            "stock.bulk_adjust",
            "stock",
            f"{store_id}:{ln.product_id}",
            store_id=store_id,
            before={"quantity": ln.before},
            after={"quantity": ln.after},
            note=why,
        )
    return lines


# --- read helpers for other domains (purchasing, reports) ----------------------------------


async def thresholds(
    session: AsyncSession, store_id: int, product_ids: Sequence[int]
) -> dict[int, int]:
    """The effective low-stock threshold per product in a store (override, else chain)."""
    from selfmart.catalog import service as catalog

    return await catalog.low_stock_thresholds(session, store_id, product_ids)


async def stocked_products(session: AsyncSession, store_id: int) -> list[int]:
    """Products the store has a balance for or lists for sale."""
    rows = await session.scalars(
        select(StockLevel.product_id)
        .where(StockLevel.store_id == store_id)
        .union(
            select(StoreProduct.product_id).where(
                StoreProduct.store_id == store_id, StoreProduct.is_listed.is_(True)
            )
        )
    )
    return sorted(int(pid) for pid in rows)


#: What a product search may ask about stock: above its threshold, at or below it (but not
#: empty), empty or below (out, negative included), below zero.
STOCK_STATES = ("ok", "low", "out", "negative")


def _in_state(state: str, quantity: Any, threshold: Any) -> ColumnElement[bool]:
    """The same partition as `alerts.stock_state`, plus negative (a part of out)."""
    if state == "out":
        return cast(ColumnElement[bool], quantity <= 0)
    if state == "negative":
        return cast(ColumnElement[bool], quantity < 0)
    if state == "low":
        return and_(quantity > 0, quantity <= threshold)
    if state == "ok":
        return and_(quantity > 0, quantity > threshold)
    raise ValidationFailed(
        f"stock_state must be one of {', '.join(STOCK_STATES)}", field="stock_state"
    )


def stock_state_condition(
    state: str,
    *,
    product_id: ColumnElement[int] | InstrumentedAttribute[int],
    chain_threshold: ColumnElement[int] | InstrumentedAttribute[int],
    store_ids: Collection[int] | None,
) -> ColumnElement[bool]:
    """A WHERE condition for a query over products: the product is in `state` in at least one
    of `store_ids` (None: any store) that stocks it (has a balance) or lists it.

    `product_id` and `chain_threshold` are the outer query's product id and chain-wide
    low-stock threshold; a store's listing override wins over the latter, as for alerts. A
    product listed but never stocked has 0 on hand there, so it is out.
    """
    if store_ids is not None and not store_ids:
        return false()
    level = cast(Table, StockLevel.__table__).alias("state_level")
    listing = cast(Table, StoreProduct.__table__).alias("state_listing")
    threshold = func.coalesce(listing.c.low_stock_threshold, chain_threshold, 0)
    stocked = (
        select(literal(1))
        .select_from(
            level.outerjoin(
                listing,
                and_(
                    listing.c.store_id == level.c.store_id,
                    listing.c.product_id == level.c.product_id,
                ),
            )
        )
        .where(level.c.product_id == product_id, _in_state(state, level.c.quantity, threshold))
        .correlate_except(level, listing)
    )
    if store_ids is not None:
        stocked = stocked.where(level.c.store_id.in_(list(store_ids)))
    if state != "out":
        return stocked.exists()
    never_stocked = cast(Table, StockLevel.__table__).alias("state_never")
    listed_empty = (
        select(literal(1))
        .select_from(listing)
        .where(
            listing.c.product_id == product_id,
            ~select(literal(1))
            .where(
                never_stocked.c.store_id == listing.c.store_id,
                never_stocked.c.product_id == listing.c.product_id,
            )
            .correlate_except(never_stocked)
            .exists(),
        )
        .correlate_except(listing)
    )
    if store_ids is not None:
        listed_empty = listed_empty.where(listing.c.store_id.in_(list(store_ids)))
    return or_(stocked.exists(), listed_empty.exists())
