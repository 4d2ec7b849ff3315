"""Reorder suggestions per store: from the stock that left the shelf over a chosen window (sales
and shrinkage, read from the ledger by the stock analysis), the supplier's lead time and safety
stock; turned into draft purchase orders (one per supplier) in one step.

    sold          = units sold net of returns in the window (never below 0)
    shrunk        = the stock analysis's shrinkage in the window: stocktake losses and
                    write-offs (damage, expiry) less stocktake gains (never below 0 here)
    outflow       = (sold + shrunk) / window days             (units per day)
    safety stock  = ceil(outflow * safety days)
    reorder point = max(ceil(outflow * lead time) + safety stock, low-stock threshold)
    order when    on hand + on order <= reorder point
    order up to   max(ceil(outflow * (lead time + cover days)) + safety stock, threshold + 1)
    quantity      rounded up to the supplier's multiple (a case of 24)

The window is the last `window_days` * 24 hours up to now. Each suggestion also shows the
sales-only velocity (sold / window days), the analysis's shrinkage (its net figure, which
may be negative when gains exceed losses) and its turnover days over the same window.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import stock as stock_analysis
from selfmart.catalog.labels import labels as product_labels
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.inventory import service as inventory
from selfmart.inventory.queries import visible_store
from selfmart.kit.time import utcnow
from selfmart.models import Product, PurchaseOrder, Supplier, SupplierProduct
from selfmart.purchasing import purchase_orders
from selfmart.purchasing.schemas import POCreate, POLineIn, ReorderParams, ReorderToOrders


@dataclass(frozen=True, slots=True)
class Suggestion:
    product_id: int
    product_name: str
    supplier_id: int
    supplier_name: str
    on_hand: int
    on_order: int
    sold_in_window: int
    shrunk_in_window: int
    daily_velocity: float
    daily_outflow: float
    turnover_days: Decimal | None
    lead_time_days: int
    safety_stock: int
    reorder_point: int
    suggested_qty: int
    cost_fen: int
    spec: str = ""
    barcode: str | None = None

    @property
    def amount_fen(self) -> int:
        return self.cost_fen * self.suggested_qty


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


async def suggest(
    session: AsyncSession, store_id: int, params: ReorderParams, *, actor: Actor
) -> list[Suggestion]:
    await visible_store(session, store_id, actor)
    product_ids = await inventory.stocked_products(session, store_id)
    if not product_ids:
        return []
    links = (
        await session.execute(
            select(SupplierProduct, Supplier.name, Product.name)
            .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
            .join(Product, Product.id == SupplierProduct.product_id)
            .where(
                Supplier.status == "active",
                Product.status == "on_sale",
                SupplierProduct.product_id.in_(product_ids),
            )
        )
    ).all()
    best: dict[int, tuple[SupplierProduct, str, str]] = {}
    for link, supplier_name, product_name in links:
        key = (not link.is_preferred, link.cost_fen, link.lead_time_days, link.supplier_id)
        known = best.get(link.product_id)
        if known is None or key < (
            not known[0].is_preferred,
            known[0].cost_fen,
            known[0].lead_time_days,
            known[0].supplier_id,
        ):
            best[link.product_id] = (link, str(supplier_name), str(product_name))
    if not best:
        return []
    ids = sorted(best)
    now = utcnow()
    figures = await stock_analysis.by_product(
        session, store_id, since=now - timedelta(days=params.window_days), until=now
    )
    on_hand = await inventory.balances(session, store_id, ids)
    on_order = await purchase_orders.on_order(session, store_id, ids)
    thresholds = await inventory.thresholds(session, store_id, ids)
    names = await product_labels(session, ids)
    out: list[Suggestion] = []
    for pid in ids:
        link, supplier_name, product_name = best[pid]
        f = figures.get(pid) or stock_analysis.StockFigures()
        sold, shrunk = max(0, f.sold), f.shrinkage
        outflow = Decimal(sold + max(0, shrunk)) / params.window_days
        safety = _ceil(outflow * params.safety_days)
        threshold = thresholds.get(pid, 0)
        reorder_point = max(_ceil(outflow * link.lead_time_days) + safety, threshold)
        position = on_hand[pid] + on_order[pid]
        if position > reorder_point:
            continue
        target = _ceil(outflow * (link.lead_time_days + params.cover_days)) + safety
        if threshold > 0:
            target = max(target, threshold + 1)
        qty = target - position
        if qty <= 0:
            continue
        qty = math.ceil(qty / link.min_order_qty) * link.min_order_qty
        out.append(
            Suggestion(
                product_id=pid,
                product_name=product_name,
                supplier_id=link.supplier_id,
                supplier_name=supplier_name,
                on_hand=on_hand[pid],
                on_order=on_order[pid],
                sold_in_window=sold,
                shrunk_in_window=shrunk,
                daily_velocity=float(round(Decimal(sold) / params.window_days, 3)),
                daily_outflow=float(round(outflow, 3)),
                turnover_days=f.turnover_days(params.window_days),
                lead_time_days=link.lead_time_days,
                safety_stock=safety,
                reorder_point=reorder_point,
                suggested_qty=qty,
                cost_fen=link.cost_fen,
                spec=names[pid].spec if pid in names else "",
                barcode=names[pid].barcode if pid in names else None,
            )
        )
    out.sort(key=lambda s: (s.supplier_name, s.product_name, s.product_id))
    return out


async def to_purchase_orders(
    session: AsyncSession, store_id: int, data: ReorderToOrders, *, actor: Actor
) -> list[PurchaseOrder]:
    """Draft purchase orders from the suggestions, one per supplier."""
    suggestions = await suggest(session, store_id, data, actor=actor)
    if data.product_ids is not None:
        chosen = set(data.product_ids)
        suggestions = [s for s in suggestions if s.product_id in chosen]
    if not suggestions:
        raise ValidationFailed("Nothing to reorder", field="product_ids")
    overrides = data.quantities or {}
    unknown = sorted(set(overrides) - {s.product_id for s in suggestions})
    if unknown:
        raise ValidationFailed(
            "Quantities given for products that are not suggested: " + ", ".join(map(str, unknown)),
            field="quantities",
        )
    by_supplier: dict[int, list[Suggestion]] = defaultdict(list)
    for s in suggestions:
        by_supplier[s.supplier_id].append(s)
    orders: list[PurchaseOrder] = []
    for supplier_id, items in sorted(by_supplier.items()):
        po = await purchase_orders.create_order(
            session,
            POCreate(
                store_id=store_id,
                supplier_id=supplier_id,
                lines=[
                    POLineIn(
                        product_id=s.product_id,
                        quantity=overrides.get(s.product_id, s.suggested_qty),
                        cost_fen=s.cost_fen,
                    )
                    for s in items
                ],
                note=f"reorder: {data.window_days}-day window, {data.safety_days} safety days",
            ),
            actor=actor,
            audit_note="from reorder suggestions",
        )
        orders.append(po)
    return orders
