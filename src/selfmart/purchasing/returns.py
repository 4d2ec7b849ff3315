"""Goods sent back to a supplier: out of a store's ledger as `supplier_return` movements whose
document is the supplier, so that settlement deducts them from what the supplier is owed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.inventory.queries import visible_store
from selfmart.purchasing.common import new_number, no_duplicates, products_by_id
from selfmart.purchasing.schemas import SupplierReturnIn
from selfmart.purchasing.suppliers import get_supplier


async def return_to_supplier(
    session: AsyncSession, supplier_id: int, data: SupplierReturnIn, *, actor: Actor
) -> dict[str, Any]:
    """Take the goods off the store's shelves (never below zero: 409 naming the products)."""
    supplier = await get_supplier(session, supplier_id)
    await visible_store(session, data.store_id, actor)
    no_duplicates([ln.product_id for ln in data.lines])
    await products_by_id(session, [ln.product_id for ln in data.lines])
    number = new_number("RS")
    note = f"{number} {data.note}".strip()
    booked = await inventory.book(
        session,
        store_id=data.store_id,
        changes=[
            inventory.Change(ln.product_id, -ln.quantity, "supplier_return", reason=note)
            for ln in data.lines
        ],
        document=("supplier", supplier.id),
        actor=actor,
        refuse_negative=True,
    )
    await audit.record(
        session,
        actor,
        "supplier.return",
        "supplier",
        supplier.id,
        store_id=data.store_id,
        after={
            "number": number,
            "lines": {str(b.product_id): -b.delta for b in booked},
        },
        note=data.note or None,
        label=supplier.name,
    )
    return {
        "number": number,
        "supplier_id": supplier.id,
        "store_id": data.store_id,
        "lines": [
            {"product_id": b.product_id, "quantity": -b.delta, "balance_after": b.balance_after}
            for b in booked
        ],
    }
