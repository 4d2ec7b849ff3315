"""Builders for orders: products to sell, and orders in a chosen state without the intake."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import (
    Order,
    OrderLine,
    Payment,
    Product,
    ProductBarcode,
    Store,
    StoreProduct,
    Terminal,
)


async def make_product(
    session: AsyncSession,
    *,
    name: str = "可口可乐 500ml",
    price_fen: int = 350,
    member_price_fen: int | None = None,
    barcode: str | None = None,
    stores: list[Store] | None = None,
    store_price_fen: int | None = None,
    status: str = "on_sale",
) -> Product:
    product = Product(
        name=name, price_fen=price_fen, member_price_fen=member_price_fen, status=status, spec="瓶"
    )
    session.add(product)
    await session.flush()
    code = barcode or f"9{secrets.randbelow(10**11):011d}"
    session.add(ProductBarcode(product_id=product.id, code=code, kind="internal"))
    for store in stores or []:
        session.add(
            StoreProduct(store_id=store.id, product_id=product.id, store_price_fen=store_price_fen)
        )
    await session.flush()
    return product


async def stock(session: AsyncSession, store: Store, product: Product, qty: int) -> None:
    """Put exactly `qty` of `product` on `store`'s shelf (unaudited test stock)."""
    from selfmart.iam.actor import SYSTEM
    from selfmart.inventory import service as inventory

    await inventory.adjust(
        session,
        store_id=store.id,
        product_id=product.id,
        actor=SYSTEM,
        reason="test stock",
        set_to=qty,
        audit_action=None,
    )


async def make_stocked_product(session: AsyncSession, store: Store, qty: int) -> tuple[int, str]:
    """A product sold in `store` with `qty` on its shelf: its id and barcode."""
    barcode = f"9{secrets.randbelow(10**11):011d}"
    product = await make_product(session, stores=[store], barcode=barcode)
    await stock(session, store, product, qty)
    return product.id, barcode


async def make_order(
    session: AsyncSession,
    store: Store,
    lines: list[tuple[Product, int]],
    *,
    status: str = "awaiting_payment",
    terminal: Terminal | None = None,
    created_at: datetime | None = None,
    paid: bool = False,
    customer_name: str | None = None,
    customer_phone: str | None = None,
    member_no: str | None = None,
    client_order_id: str | None = None,
    expires_in: timedelta | None = timedelta(minutes=15),
) -> Order:
    """An order as intake would leave it (store prices, no stock booked)."""
    now = created_at or utcnow()
    total = sum(p.price_fen * q for p, q in lines)
    order = Order(
        order_no=f"{now:%y%m%d}{secrets.randbelow(10**10):010d}",
        store_id=store.id,
        terminal_id=terminal.id if terminal else None,
        client_order_id=client_order_id or (f"c-{uuid.uuid4().hex[:12]}" if terminal else None),
        source="terminal" if terminal else "console",
        status=status,
        purchased_at=now,
        created_at=now,
        updated_at=now,
        expires_at=now + expires_in if expires_in else None,
        customer_name=customer_name,
        customer_phone=customer_phone,
        phone_last4=customer_phone[-4:] if customer_phone else None,
        member_no=member_no,
        item_count=sum(q for _, q in lines),
        subtotal_fen=total,
        total_fen=total,
        paid_fen=total if paid else 0,
        paid_at=now if paid else None,
        payment_method="manual" if paid else None,
    )
    session.add(order)
    await session.flush()
    for i, (product, qty) in enumerate(lines, start=1):
        session.add(
            OrderLine(
                order_id=order.id,
                line_no=i,
                product_id=product.id,
                name=product.name,
                spec=product.spec,
                list_price_fen=product.price_fen,
                unit_price_fen=product.price_fen,
                quantity=qty,
                amount_fen=product.price_fen * qty,
                created_at=now,
            )
        )
    if paid:
        session.add(
            Payment(
                order_id=order.id,
                store_id=store.id,
                channel="manual",
                status="succeeded",
                amount_fen=total,
                created_at=now,
                succeeded_at=now,
                actor_type="user",
                actor_name="test",
            )
        )
    await session.flush()
    return order
