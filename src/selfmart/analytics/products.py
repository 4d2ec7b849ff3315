"""Products and categories over a window: hot products, slow movers and the category mix."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.scope import Scope
from selfmart.analytics.summaries import excluding
from selfmart.models import Category, Product, ProductDay, StoreProduct

Ranking = Literal["hot", "slow"]
FIELDS = ("orders", "quantity", "sales_fen", "refund_qty", "refunds_fen")


async def _by_product(
    session: AsyncSession, scope: Scope, first: date, last: date
) -> dict[int, dict[str, int]]:
    """Product -> summed figures over the window, the live tail included."""
    out: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    if not scope.store_ids:
        return out
    live_keys = scope.live_keys(first, last)
    p = ProductDay
    where = [
        p.store_id.in_(scope.store_ids),
        p.day >= first,
        p.day <= last,
        excluding(p, live_keys),
    ]
    if scope.category_ids is not None:
        where.append(p.category_id.in_(scope.category_ids))
    stmt = select(p.product_id, *(func.sum(getattr(p, f)).label(f) for f in FIELDS)).where(*where)
    for r in (await session.execute(stmt.group_by(p.product_id))).all():
        row = out[r.product_id]
        for f in FIELDS:
            row[f] += int(getattr(r, f) or 0)
    stores = set(scope.store_ids)
    for (store_id, day, product_id), live in scope.live.products.items():
        if store_id not in stores or not first <= day <= last:
            continue
        if scope.category_ids is not None and live["category_id"] not in scope.category_ids:
            continue
        row = out[product_id]
        for f in FIELDS:
            row[f] += live[f]
    return out


async def ranking(
    session: AsyncSession,
    scope: Scope,
    *,
    first: date,
    last: date,
    order: Ranking,
    limit: int,
) -> list[dict[str, Any]]:
    """Hot products (most net sales first) or slow movers (products listed in the scope's
    stores that sold the fewest units, those that sold none first)."""
    figures = await _by_product(session, scope, first, last)
    if order == "slow" and scope.store_ids:
        listed = select(StoreProduct.product_id).where(
            StoreProduct.store_id.in_(scope.store_ids), StoreProduct.is_listed.is_(True)
        )
        if scope.category_ids is not None:
            listed = listed.join(Product, Product.id == StoreProduct.product_id).where(
                Product.category_id.in_(scope.category_ids)
            )
        for pid in (await session.scalars(listed.distinct())).all():
            figures[pid]  # noqa: B018 - a listed product that sold nothing is a zero row
    rows = [(pid, f) for pid, f in figures.items()]
    if order == "hot":
        rows.sort(key=lambda x: (-(x[1]["sales_fen"] - x[1]["refunds_fen"]), x[0]))
    else:
        rows.sort(key=lambda x: (x[1]["quantity"], x[1]["sales_fen"], x[0]))
    rows = rows[:limit]
    names = await _names(session, [pid for pid, _ in rows])
    return [
        {
            "product_id": pid,
            "name": names.get(pid, ("", ""))[0],
            "spec": names.get(pid, ("", ""))[1],
            **f,
            "net_sales_fen": f["sales_fen"] - f["refunds_fen"],
        }
        for pid, f in rows
    ]


async def _names(session: AsyncSession, ids: list[int]) -> dict[int, tuple[str, str]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Product.id, Product.name, Product.spec).where(Product.id.in_(ids))
    )
    return {r.id: (r.name, r.spec or "") for r in rows.all()}


async def category_mix(
    session: AsyncSession, scope: Scope, *, first: date, last: date
) -> list[dict[str, Any]]:
    """Sales by top-level category (products with none under category_id null), largest first;
    shares in basis points of the window's net sales."""
    # Roll each product up to the top-level category it is under now.
    figures = await _by_product(session, scope, first, last)
    cats: dict[int, int | None] = {}
    if figures:
        cats = {
            r.id: r.category_id
            for r in (
                await session.execute(
                    select(Product.id, Product.category_id).where(Product.id.in_(list(figures)))
                )
            ).all()
        }
    paths = {
        r.id: (r.path, r.name)
        for r in (await session.execute(select(Category.id, Category.path, Category.name))).all()
    }
    totals: dict[int | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for pid, f in figures.items():
        cat = cats.get(pid)
        top: int | None = None
        if cat is not None and cat in paths:
            top = int(paths[cat][0].strip("/").split("/")[0])
        row = totals[top]
        for k in FIELDS:
            row[k] += f[k]
    net_total = sum(f["sales_fen"] - f["refunds_fen"] for f in totals.values())
    out: list[dict[str, Any]] = []
    for cat_id, f in totals.items():
        net = f["sales_fen"] - f["refunds_fen"]
        out.append(
            {
                "category_id": cat_id,
                "name": paths[cat_id][1] if cat_id is not None and cat_id in paths else None,
                "quantity": f["quantity"],
                "sales_fen": f["sales_fen"],
                "refunds_fen": f["refunds_fen"],
                "net_sales_fen": net,
                "share_bp": (net * 10_000 + net_total // 2) // net_total if net_total else 0,
            }
        )
    out.sort(key=lambda r: (-int(r["net_sales_fen"]), int(r["category_id"] or 0)))
    return out
