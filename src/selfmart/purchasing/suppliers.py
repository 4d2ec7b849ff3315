"""Suppliers and the products they deliver, with our cost and their lead time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.audit import service as audit
from selfmart.catalog.labels import first_barcode
from selfmart.catalog.labels import labels as product_labels
from selfmart.errors import AlreadyExists, NotFound
from selfmart.iam.actor import Actor
from selfmart.kit.pagination import PageParams, paginate
from selfmart.models import Product, Supplier, SupplierProduct
from selfmart.purchasing.common import products_by_id
from selfmart.purchasing.schemas import SupplierCreate, SupplierProductIn, SupplierUpdate

FIELDS = (
    "code",
    "name",
    "contact_name",
    "phone",
    "email",
    "address",
    "payment_terms",
    "payment_days",
    "status",
    "note",
    "settlement_basis",
    "shrinkage_borne",
)
LINK_FIELDS = ("supplier_sku", "cost_fen", "lead_time_days", "min_order_qty", "is_preferred")


async def list_suppliers(
    session: AsyncSession,
    params: PageParams,
    *,
    q: str | None = None,
    status: str | None = None,
    product_id: int | None = None,
) -> tuple[list[Supplier], int]:
    stmt = select(Supplier)
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Supplier.name).like(like),
                func.lower(Supplier.code).like(like),
                func.lower(Supplier.contact_name).like(like),
            )
        )
    if status:
        stmt = stmt.where(Supplier.status == status)
    if product_id is not None:
        stmt = stmt.where(
            Supplier.id.in_(
                select(SupplierProduct.supplier_id).where(SupplierProduct.product_id == product_id)
            )
        )
    return await paginate(session, stmt.order_by(Supplier.name, Supplier.id), params)


async def get_supplier(
    session: AsyncSession, supplier_id: int, *, for_update: bool = False
) -> Supplier:
    supplier = await session.get(Supplier, supplier_id, with_for_update=for_update)
    if supplier is None:
        raise NotFound("No such supplier", field="supplier_id")
    return supplier


async def supplier_products(session: AsyncSession, supplier_id: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(SupplierProduct, Product.name, Product.spec, first_barcode())
        .join(Product, Product.id == SupplierProduct.product_id)
        .where(SupplierProduct.supplier_id == supplier_id)
        .order_by(Product.name, Product.id)
    )
    return [
        {
            "supplier_id": sp.supplier_id,
            "product_id": sp.product_id,
            "product_name": name,
            "spec": spec,
            "barcode": barcode,
            **{f: getattr(sp, f) for f in LINK_FIELDS},
        }
        for sp, name, spec, barcode in rows
    ]


async def create_supplier(session: AsyncSession, data: SupplierCreate, *, actor: Actor) -> Supplier:
    if await session.scalar(select(Supplier.id).where(Supplier.code == data.code)):
        raise AlreadyExists(f"Supplier code {data.code} is taken", field="code")
    supplier = Supplier(**data.model_dump())
    session.add(supplier)
    await session.flush()
    await audit.record(
        session,
        actor,
        "supplier.create",
        "supplier",
        supplier.id,
        after=audit.snapshot(supplier, FIELDS),
    )
    return supplier


async def update_supplier(
    session: AsyncSession, supplier_id: int, data: SupplierUpdate, *, actor: Actor
) -> Supplier:
    supplier = await get_supplier(session, supplier_id)
    before = audit.snapshot(supplier, FIELDS)
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is None and key not in ("phone", "email"):
            continue  # only the optional contact fields may be cleared
        setattr(supplier, key, value)
    await session.flush()
    await audit.record(
        session,
        actor,
        "supplier.update",
        "supplier",
        supplier.id,
        before=before,
        after=audit.snapshot(supplier, FIELDS),
    )
    return supplier


async def set_supplier_product(
    session: AsyncSession,
    supplier_id: int,
    product_id: int,
    data: SupplierProductIn,
    *,
    actor: Actor,
) -> dict[str, Any]:
    """Add or change a product the supplier delivers. Marking it preferred un-marks the
    product's other suppliers (reorder suggestions pick the preferred one)."""
    supplier = await get_supplier(session, supplier_id)
    await products_by_id(session, [product_id])  # a 404 when there is none
    link = await session.scalar(
        select(SupplierProduct)
        .where(SupplierProduct.supplier_id == supplier.id, SupplierProduct.product_id == product_id)
        .with_for_update()
    )
    before = audit.snapshot(link, LINK_FIELDS) if link else None
    if link is None:
        link = SupplierProduct(supplier_id=supplier.id, product_id=product_id, **data.model_dump())
        session.add(link)
    else:
        for key, value in data.model_dump().items():
            setattr(link, key, value)
    if data.is_preferred:
        await session.execute(
            update(SupplierProduct)
            .where(
                SupplierProduct.product_id == product_id,
                SupplierProduct.supplier_id != supplier.id,
                SupplierProduct.is_preferred.is_(True),
            )
            .values(is_preferred=False)
        )
    await session.flush()
    await audit.record(
        session,
        actor,
        "supplier.product_set",
        "supplier",
        supplier.id,
        before=before,
        after=audit.snapshot(link, LINK_FIELDS),
        note=f"product {product_id}",
    )
    return {
        "supplier_id": supplier.id,
        "product_id": product_id,
        **(await product_labels(session, [product_id]))[product_id].fields(),
        **{f: getattr(link, f) for f in LINK_FIELDS},
    }


async def remove_supplier_product(
    session: AsyncSession, supplier_id: int, product_id: int, *, actor: Actor
) -> None:
    link = await session.scalar(
        select(SupplierProduct).where(
            SupplierProduct.supplier_id == supplier_id, SupplierProduct.product_id == product_id
        )
    )
    if link is None:
        raise NotFound("The supplier does not deliver this product", field="product_id")
    before = audit.snapshot(link, LINK_FIELDS)
    await session.delete(link)
    await session.flush()
    await audit.record(
        session,
        actor,
        "supplier.product_remove",
        "supplier",
        supplier_id,
        before=before,
        note=f"product {product_id}",
    )


# --- read helpers for settlement -----------------------------------------------------------


async def costs(session: AsyncSession, supplier_id: int, product_ids: list[int]) -> dict[int, int]:
    """The supplier's cost of each product; the product's own cost where it has none."""
    if not product_ids:
        return {}
    found = dict(
        (
            await session.execute(
                select(SupplierProduct.product_id, SupplierProduct.cost_fen).where(
                    SupplierProduct.supplier_id == supplier_id,
                    SupplierProduct.product_id.in_(product_ids),
                )
            )
        ).all()
    )
    missing = [pid for pid in product_ids if pid not in found]
    if missing:
        found.update(
            (
                await session.execute(
                    select(Product.id, Product.cost_fen).where(Product.id.in_(missing))
                )
            ).all()
        )
    return {int(pid): int(cost or 0) for pid, cost in found.items()}


async def products_settled_with(session: AsyncSession, supplier_id: int) -> dict[int, int]:
    """The products whose sales and shrinkage are the supplier's, with its cost: those it is
    the preferred supplier of, and those it is the only supplier of."""
    only = (
        select(SupplierProduct.product_id)
        .group_by(SupplierProduct.product_id)
        .having(func.count() == 1)
    )
    rows = await session.execute(
        select(SupplierProduct.product_id, SupplierProduct.cost_fen).where(
            SupplierProduct.supplier_id == supplier_id,
            or_(SupplierProduct.is_preferred.is_(True), SupplierProduct.product_id.in_(only)),
        )
    )
    return {int(pid): int(cost) for pid, cost in rows}
