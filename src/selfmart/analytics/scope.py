"""What a statistic covers: the stores (the caller's, narrowed to a city or one store), and
optionally a product or a category with everything below it; plus the live tail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import live, member_counts, scoped_live
from selfmart.analytics.summaries import Key, Summary
from selfmart.catalog import repository as catalog_repo
from selfmart.catalog.exceptions import CategoryNotFound, ProductNotFound, StoreNotFound
from selfmart.iam.actor import Actor
from selfmart.models import Category, Product, Store, StoreProduct

#: work_mem of a statistics request's transaction (PostgreSQL)
ANALYTICS_WORK_MEM = "32MB"


@dataclass
class Scope:
    store_ids: list[int]
    #: store id -> time zone
    zones: dict[int, str]
    product_id: int | None = None
    #: the category asked for, and it with every category below it
    category_id: int | None = None
    category_ids: list[int] | None = None
    #: store days changed since the last refresh, recomputed from the raw orders
    live: Summary = field(default_factory=Summary)
    #: whose stored distinct-member counts fit this scope: its one store, 0 for the whole
    #: chain, None for several stores that are not the chain (a city, a manager's stores)
    count_key: int | None = None

    @property
    def kind(self) -> str:
        if self.product_id is not None:
            return "product"
        if self.category_ids is not None:
            return "category"
        return "sales"

    def live_keys(self, first: date, last: date) -> list[Key]:
        return [k for k in self.live.keys if first <= k[1] <= last]


async def resolve(
    session: AsyncSession,
    *,
    actor: Actor,
    store_id: int | None = None,
    city: str | None = None,
    product_id: int | None = None,
    category_id: int | None = None,
) -> Scope:
    """The scope, or a 404 for a store, product or category the caller may not see (the same
    answer as for one that does not exist, so nothing leaks across stores)."""
    stmt = select(Store.id, Store.timezone)
    if actor.store_ids is not None:
        stmt = stmt.where(Store.id.in_(sorted(actor.store_ids)))
    if store_id is not None:
        stmt = stmt.where(Store.id == store_id)
    if city is not None:
        stmt = stmt.where(Store.city == city)
    rows = (await session.execute(stmt.order_by(Store.id))).all()
    if store_id is not None and not rows:
        raise StoreNotFound(field="store_id")
    scope = Scope(
        store_ids=[r.id for r in rows],
        zones={r.id: r.timezone or "Asia/Shanghai" for r in rows},
    )
    if store_id is not None:
        scope.count_key = store_id
    elif city is None and actor.store_ids is None:
        scope.count_key = member_counts.CHAIN
    if product_id is not None:
        found = await session.scalar(select(Product.id).where(Product.id == product_id))
        if found is not None and actor.store_ids is not None:
            found = await session.scalar(
                select(StoreProduct.product_id)
                .where(
                    StoreProduct.product_id == product_id,
                    StoreProduct.store_id.in_(sorted(actor.store_ids)),
                )
                .limit(1)
            )
        if found is None:
            raise ProductNotFound(field="product_id")
        scope.product_id = product_id
    if category_id is not None:
        if await session.scalar(select(Category.id).where(Category.id == category_id)) is None:
            raise CategoryNotFound(field="category_id")
        scope.category_id = category_id
        scope.category_ids = await catalog_repo.subtree_ids(session, [category_id])
    return scope


async def _plan_for_parameters(session: AsyncSession) -> None:
    """PostgreSQL, for a product's or a category's statistics: plan every statement of this
    (read) transaction for its own parameters. asyncpg prepares statements, and after five runs
    PostgreSQL may switch one to a generic plan, which cannot know how many windows, runs or
    live days an array holds nor which product or category is asked for: a category's year
    went from 190 ms to 640 ms on the sixth request (10M order lines). And room to sort a year
    of a large category's member rows in memory (they spilled to disk at the default 4MB).
    Not for a store's, a city's or the chain's: their statements' generic plans are good, and
    planning their one large statement anew each time cost more than it saved (a store's month
    4 -> 9 ms)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(
                func.set_config("plan_cache_mode", "force_custom_plan", True),
                func.set_config("work_mem", ANALYTICS_WORK_MEM, True),
            )
        )


async def with_live(session: AsyncSession, scope: Scope, *, sales_only: bool = False) -> Scope:
    """Recompute the scope's store days that changed since the last refresh (the tail the
    summaries do not hold yet), so every figure is as of now. `sales_only` (for readers of the
    store-day and member-day rows alone: sales and member statistics, today) sums just those
    rows in the database, and for a product or a category just its own rows."""
    if sales_only and scope.kind == "sales":
        # Kept in process until the change feed moves (analytics/live.py).
        scope.live = await live.sales_tail(session, scope.store_ids, scope.zones)
        return scope
    if sales_only:
        await _plan_for_parameters(session)
        # A product's or a category's own statistics: just its rows, summed by the database.
        target = scoped_live.Target(
            product_id=scope.product_id,
            category_id=scope.category_id,
            category_ids=tuple(scope.category_ids or ()),
        )
        scope.live = await live.scoped_tail(session, scope.store_ids, scope.zones, target)
        return scope
    # Every row of the live days (rankings, mixes, heatmaps), kept in process likewise.
    scope.live = await live.full_tail(session, scope.store_ids, scope.zones)
    return scope
