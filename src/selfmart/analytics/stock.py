"""Stock analysis from the inventory ledger over a window of local days: turnover days,
sell-through, shrinkage and stock value at cost, by store and by category.

Definitions (docs/analytics.md, "Stock analysis"):
- opening / closing: the ledger balance when the window starts / ends (each store's zone);
- received: purchase receipts and transfers in; sold: sales less customer returns;
- shrinkage: stocktake losses and write-offs less stocktake gains (units, and at cost);
- sell-through: sold / (opening + received), in basis points, half up (null when nothing
  was available);
- turnover days: average stock ((opening + closing) / 2) / units sold per day, to a tenth of a
  day, half up (null when nothing sold);
- stock value: closing units at the product's cost price now (`products.cost_fen`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.scope import Scope
from selfmart.inventory import queries as inventory
from selfmart.kit.time import local_day_bounds
from selfmart.models import Category, Product, Store


@dataclass
class StockFigures:
    opening: int = 0
    closing: int = 0
    received: int = 0
    sold: int = 0
    shrinkage: int = 0
    shrinkage_fen: int = 0
    stock_value_fen: int = 0
    products: set[int] = field(default_factory=set)

    def add(self, t: inventory.LedgerTotals, cost_fen: int) -> None:
        self.opening += t.opening
        self.closing += t.closing
        self.received += t.received
        self.sold += t.sold
        self.shrinkage += t.shrunk
        self.shrinkage_fen += t.shrunk * cost_fen
        self.stock_value_fen += t.closing * cost_fen
        self.products.add(t.product_id)

    def as_dict(self, days: int) -> dict[str, Any]:
        available = self.opening + self.received
        sell_through = None
        if available > 0:
            sell_through = int(
                (Decimal(self.sold * 10_000) / available).quantize(Decimal(1), ROUND_HALF_UP)
            )
        return {
            "products": len(self.products),
            "opening_qty": self.opening,
            "received_qty": self.received,
            "sold_qty": self.sold,
            "shrinkage_qty": self.shrinkage,
            "shrinkage_fen": self.shrinkage_fen,
            "closing_qty": self.closing,
            "stock_value_fen": self.stock_value_fen,
            "sell_through_bp": sell_through,
            "turnover_days": self.turnover_days(days),
        }

    def turnover_days(self, days: int) -> Decimal | None:
        """Average stock over units sold per day, to a tenth of a day (null when nothing sold)."""
        if self.sold <= 0:
            return None
        return (Decimal(self.opening + self.closing) * days / (2 * self.sold)).quantize(
            Decimal("0.1"), ROUND_HALF_UP
        )


async def by_product(
    session: AsyncSession, store_id: int, *, since: datetime, until: datetime
) -> dict[int, StockFigures]:
    """One store's figures per product over [since, until) (any instants, not local days): the
    same ledger totals the analysis adds up; cost-valued fields are left at zero."""
    out: dict[int, StockFigures] = {}
    for t in await inventory.ledger_totals(session, [store_id], since, until):
        figures = out[t.product_id] = StockFigures()
        figures.add(t, 0)
    return out


async def analysis(
    session: AsyncSession, scope: Scope, *, first: date, last: date
) -> dict[str, Any]:
    """The scope's stores' ledger over first..last (local days), by store, by category and in
    total."""
    totals: list[inventory.LedgerTotals] = []
    by_zone: dict[str, list[int]] = defaultdict(list)
    for store_id in scope.store_ids:
        by_zone[scope.zones[store_id]].append(store_id)
    for zone, store_ids in sorted(by_zone.items()):
        tz = ZoneInfo(zone)
        since, _ = local_day_bounds(first, tz)
        _, until = local_day_bounds(last, tz)
        totals.extend(await inventory.ledger_totals(session, store_ids, since, until))
    products = await _products(session, {t.product_id for t in totals})
    if scope.category_ids is not None:
        wanted = set(scope.category_ids)
        totals = [t for t in totals if products.get(t.product_id, (None, 0))[0] in wanted]
    days = (last - first).days + 1
    stores: dict[int, StockFigures] = defaultdict(StockFigures)
    categories: dict[int | None, StockFigures] = defaultdict(StockFigures)
    total = StockFigures()
    for t in totals:
        category_id, cost = products.get(t.product_id, (None, 0))
        for figures in (stores[t.store_id], categories[category_id], total):
            figures.add(t, cost)
    store_names = await _names(session, Store, stores)
    category_names = await _names(session, Category, [c for c in categories if c is not None])
    return {
        "start": first,
        "end": last,
        "days": days,
        "store_ids": scope.store_ids,
        "by_store": [
            {"store_id": s, "name": store_names.get(s, ""), **f.as_dict(days)}
            for s, f in sorted(stores.items())
        ],
        "by_category": [
            {
                "category_id": c,
                "name": None if c is None else category_names.get(c, ""),
                **f.as_dict(days),
            }
            for c, f in sorted(categories.items(), key=lambda x: (x[0] is None, x[0] or 0))
        ],
        "total": total.as_dict(days),
    }


async def _products(session: AsyncSession, ids: Iterable[int]) -> dict[int, tuple[int | None, int]]:
    """Product -> (its category, its cost price now)."""
    out: dict[int, tuple[int | None, int]] = {}
    ids = sorted(ids)
    for i in range(0, len(ids), 900):
        rows = await session.execute(
            select(Product.id, Product.category_id, Product.cost_fen).where(
                Product.id.in_(ids[i : i + 900])
            )
        )
        out.update({r.id: (r.category_id, r.cost_fen) for r in rows.all()})
    return out


async def _names(session: AsyncSession, model: Any, ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(ids)
    if not ids:
        return {}
    rows = await session.execute(select(model.id, model.name).where(model.id.in_(ids)))
    return {r.id: r.name for r in rows.all()}
