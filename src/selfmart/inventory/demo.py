"""Demo stock for `make run`: opening stock in every store booked as purchase receipts, two
weeks of sales (so reorder suggestions have a velocity and some shelves run low), suppliers
with the products they deliver, purchase orders in several states, a transfer in transit, and
the low-stock and near-expiry alerts that follow. Deterministic; a second run adds nothing."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.iam.actor import Actor
from selfmart.iam.permissions import Perm
from selfmart.inventory import batches
from selfmart.inventory import service as inventory
from selfmart.kit.time import utcnow
from selfmart.models import (
    Category,
    Product,
    PurchaseOrder,
    StockMovement,
    StockTransfer,
    Store,
    Supplier,
    SupplierProduct,
)

log = logging.getLogger(__name__)

DEMO_ACTOR = Actor(kind="system", id=None, name="demo", permissions=frozenset(Perm), store_ids=None)

#: (code, name, contact, phone, terms, days, top-level categories supplied, lead time)
DEMO_SUPPLIERS = [
    ("SUP-HD01", "华东饮料批发有限公司", "陈志强", "13816620001", "月结30天", 30, ("饮料",), 2),
    ("SUP-RP02", "光明乳品配送中心", "李秀英", "13917730002", "货到付款", 0, ("乳品",), 1),
    ("SUP-LS03", "沪杭休闲食品供应链", "王建国", "13621140003", "月结15天", 15, (), 3),
]


def _rng(*parts: object) -> random.Random:
    return random.Random(":".join(map(str, parts)))


async def _products(session: AsyncSession) -> list[tuple[Product, str]]:
    """Every on-sale product with its top-level category name."""
    cats = {c.id: c for c in await session.scalars(select(Category))}

    def top(category_id: int | None) -> str:
        cat = cats.get(category_id) if category_id is not None else None
        while cat is not None and cat.parent_id is not None:
            cat = cats.get(cat.parent_id)
        return cat.name if cat else ""

    rows = await session.scalars(
        select(Product).where(Product.status == "on_sale").order_by(Product.id)
    )
    return [(p, top(p.category_id)) for p in rows]


async def _suppliers(session: AsyncSession, products: Sequence[tuple[Product, str]]) -> None:
    for code, name, contact, phone, terms, days, tops, lead in DEMO_SUPPLIERS:
        if await session.scalar(select(Supplier.id).where(Supplier.code == code)):
            continue
        supplier = Supplier(
            code=code,
            name=name,
            contact_name=contact,
            phone=phone,
            payment_terms=terms,
            payment_days=days,
            address="上海市闵行区虹梅南路 4999 号",
        )
        session.add(supplier)
        await session.flush()
        claimed = {t for _, _, _, _, _, _, ts, _ in DEMO_SUPPLIERS for t in ts}
        for product, top in products:
            mine = top in tops if tops else top not in claimed
            if not mine:
                continue
            cost = product.cost_fen or product.price_fen * 7 // 10
            session.add(
                SupplierProduct(
                    supplier_id=supplier.id,
                    product_id=product.id,
                    cost_fen=cost,
                    lead_time_days=lead,
                    min_order_qty=6 if product.price_fen < 1000 else 1,
                    is_preferred=True,
                )
            )
    await session.flush()


async def _opening_stock(
    session: AsyncSession, store: Store, products: Sequence[tuple[Product, str]]
) -> bool:
    """Opening stock and two weeks of sales; False when the store already has its stock."""
    done = await session.scalar(
        select(StockMovement.id)
        .where(StockMovement.store_id == store.id, StockMovement.document_type == "opening_stock")
        .limit(1)
    )
    if done:
        return False
    today = utcnow().date()
    lines = []
    left: dict[int, int] = {}
    for product, _ in products:
        r = _rng(store.code, product.id)
        qty = r.randint(20, 72)
        left[product.id] = qty
        expiry = None
        if product.track_batches:
            # a few lots close to their date, so near-expiry alerts have something to show
            days = r.choice([2, 3, 9, 14]) if r.random() < 0.2 else (product.shelf_life_days or 30)
            expiry = today + timedelta(days=days)
        lines.append(inventory.ReceiptLine(product.id, qty, expiry, f"D{today:%m%d}"))
    await inventory.receive(
        session,
        store_id=store.id,
        lines=lines,
        document=("opening_stock", store.code),
        actor=DEMO_ACTOR,
        # before the month of demo orders (selfmart.orders.demo), so no sale precedes it
        occurred_at=utcnow() - timedelta(days=32),
    )
    # Sales over the last 14 days: a handful of best sellers sell most; some run low, none
    # below zero (a shelf cannot sell what it does not hold; the orders demo keeps the one
    # deliberate example of a short shelf).
    r = _rng(store.code, "sales")
    ids = [p.id for p, _ in products]
    best = r.sample(ids, k=min(len(ids), 30))
    start = utcnow() - timedelta(days=14)
    for n in range(110):
        wanted = {pid: r.randint(1, 3) for pid in r.sample(best, k=r.randint(1, 4))}
        basket = {pid: min(q, left[pid] - 2) for pid, q in wanted.items() if left[pid] > 2}
        if not basket:
            continue
        for pid, q in basket.items():
            left[pid] -= q
        await inventory.deduct_for_sale(
            session,
            store_id=store.id,
            lines=sorted(basket.items()),
            document=("demo_sale", f"{store.code}-{n:04d}"),
            actor=DEMO_ACTOR,
            allow_negative=store.allow_negative_stock,
            occurred_at=start + timedelta(minutes=n * 120 + r.randint(0, 90)),
        )
    return True


async def _purchase_orders(session: AsyncSession, store: Store, *, draft_reorders: bool) -> None:
    if await session.scalar(select(PurchaseOrder.id).where(PurchaseOrder.store_id == store.id)):
        return
    from selfmart.purchasing import purchase_orders, reorder
    from selfmart.purchasing.schemas import (
        POCreate,
        POLineIn,
        POReceive,
        ReceiveLineIn,
        ReorderToOrders,
    )

    links = (
        await session.execute(
            select(SupplierProduct.supplier_id, SupplierProduct.product_id).order_by(
                SupplierProduct.supplier_id, SupplierProduct.product_id
            )
        )
    ).all()
    by_supplier: dict[int, list[int]] = {}
    for sid, pid in links:
        by_supplier.setdefault(int(sid), []).append(int(pid))
    if not by_supplier:
        return
    first, *rest = sorted(by_supplier)
    r = _rng(store.code, "po")
    # A delivery that came in full last week, and one on its way. The delivered goods leave
    # out a shelf that is below zero: the orders demo keeps one short on purpose, for its
    # stock_short issue (which product that is depends on the random history).
    held = await inventory.balances(session, store.id, by_supplier[first])
    delivered = [pid for pid in by_supplier[first] if held.get(pid, 0) >= 0][:4]
    received = await purchase_orders.create_order(
        session,
        POCreate(
            store_id=store.id,
            supplier_id=first,
            lines=[POLineIn(product_id=pid, quantity=24) for pid in delivered],
            note="每周补货",
        ),
        actor=DEMO_ACTOR,
    )
    await purchase_orders.submit(session, received.id, actor=DEMO_ACTOR)
    await purchase_orders.receive(
        session,
        received.id,
        POReceive(
            lines=[
                ReceiveLineIn(product_id=ln.product_id, quantity=ln.quantity_ordered)
                for ln in received.lines
            ]
        ),
        actor=DEMO_ACTOR,
    )
    if rest:
        pending = await purchase_orders.create_order(
            session,
            POCreate(
                store_id=store.id,
                supplier_id=rest[0],
                lines=[
                    POLineIn(product_id=pid, quantity=r.choice([12, 24, 36]))
                    for pid in by_supplier[rest[0]][:5]
                ],
                expected_on=utcnow().date() + timedelta(days=2),
            ),
            actor=DEMO_ACTOR,
        )
        await purchase_orders.submit(session, pending.id, actor=DEMO_ACTOR)
    # and the drafts the reorder suggestions make for whatever is running low (the first store,
    # which the suggestions page opens on, keeps its suggestions standing, to show them)
    if not draft_reorders:
        return
    try:
        await reorder.to_purchase_orders(
            session, store.id, ReorderToOrders(window_days=14), actor=DEMO_ACTOR
        )
    except Exception:  # nothing to reorder is fine for a demo
        log.info("no reorder suggestions for %s", store.code)


async def _transfer(session: AsyncSession, stores: Sequence[Store]) -> None:
    if len(stores) < 2 or await session.scalar(select(StockTransfer.id).limit(1)):
        return
    from selfmart.purchasing import transfers
    from selfmart.purchasing.schemas import TransferCreate, TransferLineIn

    src, dst = stores[0], stores[1]
    have = await inventory.balances(
        session, src.id, await inventory.stocked_products(session, src.id)
    )
    movable = [pid for pid, q in sorted(have.items()) if q >= 30][:3]
    if not movable:
        return
    transfer = await transfers.create_transfer(
        session,
        TransferCreate(
            from_store_id=src.id,
            to_store_id=dst.id,
            lines=[TransferLineIn(product_id=pid, quantity=10) for pid in movable],
            note="张江店周末活动备货",
        ),
        actor=DEMO_ACTOR,
    )
    await transfers.ship(session, transfer.id, actor=DEMO_ACTOR)


async def seed_inventory(
    session: AsyncSession,
    stores: Sequence[Store],
    *,
    sales: Callable[[AsyncSession, Sequence[Store]], Awaitable[object]] | None = None,
) -> int:
    """Stock, suppliers, orders and alerts for the demo stores; returns stores newly stocked.

    `sales` (the orders demo) sells from the opening stock before purchasing looks at what
    runs low, so the reorder drafts cover what the customers bought."""
    products = await _products(session)
    if not products:
        return 0
    await _suppliers(session, products)
    stocked = 0
    for store in stores:
        if await _opening_stock(session, store, products):
            stocked += 1
    if sales is not None:
        await sales(session, stores)
    for i, store in enumerate(stores):
        await _purchase_orders(session, store, draft_reorders=i > 0)
    await _transfer(session, list(stores))
    await batches.scan_near_expiry(session, within_days=3)
    await session.flush()
    return stocked
