"""The statistics the console asks for: each resolves its scope (a 404 for what the caller
may not see), takes in the live tail, and reads the summaries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import member_sales, patterns, products, sales, stock
from selfmart.analytics import scope as scopes
from selfmart.analytics.sales import Figures, Granularity, periods
from selfmart.analytics.summaries import Key, stored
from selfmart.errors import ValidationFailed
from selfmart.iam.actor import Actor
from selfmart.kit.time import utcnow

#: The longest window for rankings, mixes and heatmaps, in days.
MAX_WINDOW_DAYS = 370


async def _scope(
    session: AsyncSession, actor: Actor, *, sales_only: bool = False, **filters: Any
) -> scopes.Scope:
    scope = await scopes.resolve(session, actor=actor, **filters)
    return await scopes.with_live(session, scope, sales_only=sales_only)


def _window(first: date, last: date) -> None:
    if last < first:
        raise ValidationFailed("The window ends before it starts", field="end")
    if (last - first).days >= MAX_WINDOW_DAYS:
        raise ValidationFailed(f"The window is longer than {MAX_WINDOW_DAYS} days", field="end")


SeriesBuilder = Callable[..., Awaitable[dict[str, Any]]]


async def _series(
    session: AsyncSession,
    build: SeriesBuilder,
    *,
    actor: Actor,
    first: date,
    last: date,
    granularity: Granularity,
    **filters: Any,
) -> dict[str, Any]:
    periods(first, last, granularity)  # a bad window is refused before anything is read
    # Both builders read the live tail's store days and member days only.
    scope = await _scope(session, actor, sales_only=True, **filters)
    return await build(session, scope, first=first, last=last, granularity=granularity)


async def sales_series(session: AsyncSession, **query: Any) -> dict[str, Any]:
    """Sales figures per period (`actor`, `first`, `last`, `granularity`, scope filters)."""
    return await _series(session, sales.series, **query)


async def member_series(session: AsyncSession, **query: Any) -> dict[str, Any]:
    """Members versus guests, new members and the repurchase rate per period (the same
    query as sales_series, without a product or category)."""
    return await _series(session, member_sales.series, **query)


async def today(session: AsyncSession, *, actor: Actor, **filters: Any) -> dict[str, Any]:
    scope = await _scope(session, actor, sales_only=True, **filters)
    now = utcnow()
    keys: set[Key] = {(s, now.astimezone(ZoneInfo(scope.zones[s])).date()) for s in scope.store_ids}
    have = await stored(session, keys - scope.live.keys)
    live = scope.live
    rows = [r for k, r in have.sales.items()] + [r for k, r in live.sales.items() if k in keys]
    members = {m for (s, d, m) in have.members} | {
        m for (s, d, m) in live.members if (s, d) in keys
    }
    total = {c: sum(r[c] for r in rows) for c in sales.ADDITIVE}
    figures = Figures(
        orders=total["orders"],
        sales_fen=total["sales_fen"],
        refunds=total["refunds"],
        refunds_fen=total["refunds_fen"],
        items=total["items"],
        paying_members=len(members),
        member_sales_fen=total["member_sales_fen"],
    )
    return {"as_of": now, "store_ids": scope.store_ids, "figures": figures.as_dict()}


async def product_ranking(
    session: AsyncSession,
    *,
    actor: Actor,
    first: date,
    last: date,
    order: products.Ranking,
    limit: int,
    **filters: Any,
) -> list[dict[str, Any]]:
    _window(first, last)
    scope = await _scope(session, actor, **filters)
    return await products.ranking(session, scope, first=first, last=last, order=order, limit=limit)


async def category_mix(
    session: AsyncSession, *, actor: Actor, first: date, last: date, **filters: Any
) -> list[dict[str, Any]]:
    _window(first, last)
    scope = await _scope(session, actor, **filters)
    return await products.category_mix(session, scope, first=first, last=last)


async def heatmap(
    session: AsyncSession, *, actor: Actor, first: date, last: date, **filters: Any
) -> list[dict[str, Any]]:
    _window(first, last)
    scope = await _scope(session, actor, **filters)
    return await patterns.heatmap(session, scope, first=first, last=last)


async def payment_mix(
    session: AsyncSession, *, actor: Actor, first: date, last: date, **filters: Any
) -> list[dict[str, Any]]:
    _window(first, last)
    scope = await _scope(session, actor, **filters)
    return await patterns.payment_mix(session, scope, first=first, last=last)


async def breakdowns(
    session: AsyncSession,
    *,
    actor: Actor,
    first: date,
    last: date,
    limit: int,
    category_id: int | None = None,
    **filters: Any,
) -> dict[str, Any]:
    """The window's breakdowns as the sales export holds them: best sellers and slow movers
    (within `category_id` when given), category mix, payment method mix, hour x weekday; each
    scope (with its live tail) resolved once for all of them."""
    _window(first, last)
    scope = await _scope(session, actor, **filters)
    ranked = scope
    if category_id is not None:
        ranked = await _scope(session, actor, category_id=category_id, **filters)
    window = {"first": first, "last": last}
    return {
        "hot": await products.ranking(session, ranked, order="hot", limit=limit, **window),
        "slow": await products.ranking(session, ranked, order="slow", limit=limit, **window),
        "categories": await products.category_mix(session, scope, **window),
        "methods": await patterns.payment_mix(session, scope, **window),
        "heatmap": await patterns.heatmap(session, scope, **window),
    }


async def stock_analysis(
    session: AsyncSession, *, actor: Actor, first: date, last: date, **filters: Any
) -> dict[str, Any]:
    _window(first, last)
    # The ledger is read directly (no live tail to take in): only the scope's stores.
    scope = await scopes.resolve(session, actor=actor, **filters)
    return await stock.analysis(session, scope, first=first, last=last)
