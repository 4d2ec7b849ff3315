"""When and how customers pay: the hour-of-day by weekday heatmap and the payment method mix,
in each store's own zone."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics.scope import Scope
from selfmart.analytics.summaries import excluding
from selfmart.models import HourCell


async def _cells(
    session: AsyncSession, scope: Scope, first: date, last: date
) -> list[tuple[date, int, str, int, int]]:
    """(day, hour, method, orders, sales_fen) over the window, the live tail included."""
    if not scope.store_ids:
        return []
    h = HourCell
    live_keys = scope.live_keys(first, last)
    stmt = (
        select(
            h.day,
            h.hour,
            h.payment_method,
            func.sum(h.orders).label("orders"),
            func.sum(h.sales_fen).label("sales_fen"),
        )
        .where(
            h.store_id.in_(scope.store_ids),
            h.day >= first,
            h.day <= last,
            excluding(h, live_keys),
        )
        .group_by(h.day, h.hour, h.payment_method)
    )
    out = [
        (r.day, r.hour, r.payment_method, int(r.orders), int(r.sales_fen))
        for r in (await session.execute(stmt)).all()
    ]
    stores = set(scope.store_ids)
    for (store_id, day, hour, method), row in scope.live.hours.items():
        if store_id in stores and first <= day <= last:
            out.append((day, hour, method, row["orders"], row["sales_fen"]))
    return out


async def heatmap(
    session: AsyncSession, scope: Scope, *, first: date, last: date
) -> list[dict[str, Any]]:
    """Orders and sales by ISO weekday (1 = Monday) and local hour; all 168 cells, zeros
    included."""
    grid: dict[tuple[int, int], list[int]] = {
        (wd, hr): [0, 0] for wd in range(1, 8) for hr in range(24)
    }
    for day, hour, _, orders, sales in await _cells(session, scope, first, last):
        cell = grid[(day.isoweekday(), hour)]
        cell[0] += orders
        cell[1] += sales
    return [
        {"weekday": wd, "hour": hr, "orders": v[0], "sales_fen": v[1]}
        for (wd, hr), v in sorted(grid.items())
    ]


async def payment_mix(
    session: AsyncSession, scope: Scope, *, first: date, last: date
) -> list[dict[str, Any]]:
    """Orders and sales by payment method, largest first."""
    mix: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, _, method, orders, sales in await _cells(session, scope, first, last):
        mix[method][0] += orders
        mix[method][1] += sales
    return [
        {"payment_method": m, "orders": v[0], "sales_fen": v[1]}
        for m, v in sorted(mix.items(), key=lambda x: (-x[1][1], x[0]))
    ]
