"""Builders for settlement tests: suppliers with their settings, goods received, sold,
returned and lost at given moments (the ledger keeps the time the clock says)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.kit.time import clock_at
from selfmart.models import Product, Store, Supplier, SupplierProduct
from selfmart.purchasing import purchase_orders, returns
from selfmart.purchasing.schemas import (
    POCreate,
    POLineIn,
    POReceive,
    ReceiveLineIn,
    ReturnLineIn,
    SupplierReturnIn,
)

FINANCE = Actor(
    kind="user", id=None, name="finance", store_ids=None,
    permissions=frozenset({"settlement:read", "settlement:write", "settlement:approve"}),
)  # fmt: skip


def at(text: str) -> datetime:
    """An aware UTC moment from '2026-11-10T04:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def make_supplier(
    session: AsyncSession, *, basis: str = "received", shrinkage_borne: bool = False
) -> Supplier:
    supplier = Supplier(
        code=f"S{uuid.uuid4().hex[:8]}",
        name=f"供应商{uuid.uuid4().hex[:4]}",
        settlement_basis=basis,
        shrinkage_borne=shrinkage_borne,
    )
    session.add(supplier)
    await session.flush()
    return supplier


async def supplies(
    session: AsyncSession,
    supplier: Supplier,
    product: Product,
    cost_fen: int,
    *,
    preferred: bool = False,
) -> None:
    session.add(
        SupplierProduct(
            supplier_id=supplier.id, product_id=product.id, cost_fen=cost_fen,
            is_preferred=preferred,
        )
    )  # fmt: skip
    await session.flush()


async def received(
    session: AsyncSession,
    store: Store,
    supplier: Supplier,
    when: str,
    lines: list[tuple[Product, int, int | None]],
    *,
    receive: list[tuple[Product, int]] | None = None,
) -> int:
    """A purchase order of (product, quantity, cost or None for the supplier's), submitted and
    received at `when` (all of it, or the (product, quantity) in `receive`)."""
    with clock_at(at(when)):
        po = await purchase_orders.create_order(
            session,
            POCreate(
                store_id=store.id,
                supplier_id=supplier.id,
                lines=[POLineIn(product_id=p.id, quantity=q, cost_fen=c) for p, q, c in lines],
            ),
            actor=FINANCE,
        )
        await purchase_orders.submit(session, po.id, actor=FINANCE)
        await receive_more(session, po.id, receive or [(p, q) for p, q, _ in lines])
    return po.id


async def receive_more(session: AsyncSession, po_id: int, lines: list[tuple[Product, int]]) -> None:
    await purchase_orders.receive(
        session,
        po_id,
        POReceive(lines=[ReceiveLineIn(product_id=p.id, quantity=q) for p, q in lines]),
        actor=FINANCE,
    )


async def sold(
    session: AsyncSession, store: Store, product: Product, quantity: int, when: str
) -> None:
    await inventory.deduct_for_sale(
        session,
        store_id=store.id,
        lines=[(product.id, quantity)],
        document=("order", uuid.uuid4().hex[:8]),
        actor=FINANCE,
        allow_negative=True,
        occurred_at=at(when),
    )


async def customer_returned(
    session: AsyncSession, store: Store, product: Product, quantity: int, when: str
) -> None:
    with clock_at(at(when)):
        await inventory.restock_for_return(
            session, store_id=store.id, lines=[(product.id, quantity)],
            document=("refund", uuid.uuid4().hex[:8]), actor=FINANCE,
        )  # fmt: skip


async def shrunk(
    session: AsyncSession, store: Store, product: Product, delta: int, kind: str, when: str
) -> None:
    """A write_off, stocktake_loss (delta < 0) or stocktake_gain (delta > 0) at `when`."""
    with clock_at(at(when)):
        if kind == "write_off":
            await inventory.write_off(
                session, store_id=store.id, product_id=product.id, quantity=-delta,
                reason="broken", actor=FINANCE,
            )  # fmt: skip
        else:
            await inventory.book(
                session, store_id=store.id,
                changes=[inventory.Change(product.id, delta, kind)],
                document=("stocktake", uuid.uuid4().hex[:8]), actor=FINANCE,
                refuse_negative=False,
            )  # fmt: skip


async def returned_to(
    session: AsyncSession,
    supplier: Supplier,
    store: Store,
    product: Product,
    quantity: int,
    when: str,
) -> None:
    with clock_at(at(when)):
        await returns.return_to_supplier(
            session,
            supplier.id,
            SupplierReturnIn(
                store_id=store.id, lines=[ReturnLineIn(product_id=product.id, quantity=quantity)]
            ),
            actor=FINANCE,
        )
