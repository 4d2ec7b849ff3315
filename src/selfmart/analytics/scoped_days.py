"""The summary rows behind exact category and product figures: a category's day over its
whole subtree, and the paying members of a product's or a category's day.

Orders and distinct members do not add up over products, so a category's figures cannot be
summed from its products' rows. Instead an order counts once in every category on the path
from each of its products' categories up to the root (`categories.path`, at most three
levels), so the figures of a category with everything below it are one row per store day.
Refunds likewise: a refund counts once in each category its lines touch. The rows are a pure
function of the store day's raw orders and the category tree when the day was summarised
(after moving a category or a product, `selfmart rebuild-analytics` restates history).

`summaries.compute` fills these rows beside the others (through `add`), and `summaries`
stores and reads them through `read` and `write`; this module needs nothing of `summaries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.kit.time import utcnow
from selfmart.models import (
    Category,
    CategoryDay,
    CategoryMember,
    Product,
    ProductMember,
    RefreshState,
)

if TYPE_CHECKING:
    from selfmart.analytics.summaries import Summary

#: The analytics_refresh_state row saying these tables hold every summarised day (written by
#: the rebuild, or by migration ana_0007 on a database with no summaries yet).
STATE = "scoped_days"
CATEGORY_FIELDS = ("orders", "items", "sales_fen", "refunds", "refunds_fen")
MEMBER_FIELDS = ("orders",)
MODELS = (CategoryDay, CategoryMember, ProductMember)
#: (table, Summary attribute) of each table, for the check
TABLES = (
    ("analytics_category_days", "categories"),
    ("analytics_category_members", "category_members"),
    ("analytics_product_members", "product_members"),
)
CHUNK = 900


class Sold(NamedTuple):
    """Where a sold order's figures go."""

    store_id: int
    day: date
    member_id: int | None


async def category_paths(
    session: AsyncSession, product_ids: Iterable[int]
) -> dict[int, tuple[int, ...]]:
    """Each product's category and every category above it (none for a product without one)."""
    ids = sorted(set(product_ids))
    out: dict[int, tuple[int, ...]] = {}
    for i in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(Product.id, Category.path)
            .join(Category, Category.id == Product.category_id)
            .where(Product.id.in_(ids[i : i + CHUNK]))
        )
        for r in rows.all():
            out[r.id] = tuple(int(c) for c in r.path.strip("/").split("/") if c)
    return out


def add(
    out: Summary,
    paths: dict[int, tuple[int, ...]],
    lines: Sequence[Any],
    sold: dict[int, Sold],
    refund_lines: Sequence[Any],
    refunded: dict[int, tuple[int, date]],
) -> None:
    """Add the category days and the product and category member rows of these order lines
    (`order_id`, `product_id`, `qty`, `amount`) and refund lines (`refund_id`, `product_id`,
    `amount_fen`); `sold` and `refunded` give each order's and refund's store day."""
    # Plain dict lookups, a row made only when its key is new: this runs per order line (27k
    # for 50 store days at 10M lines a year), for the refresh, the check and the live tail.
    categories, category_members = out.categories, out.category_members
    product_members = out.product_members
    product_orders: set[tuple[int, int]] = set()
    category_orders: set[tuple[int, int]] = set()
    for ln in lines:
        order_id, product_id = ln.order_id, ln.product_id
        s = sold[order_id]
        member_id = s.member_id
        if member_id is not None and (order_id, product_id) not in product_orders:
            product_orders.add((order_id, product_id))
            _one_more_order(product_members, (s.store_id, s.day, product_id, member_id))
        for c in paths.get(product_id, ()):
            row_key = (s.store_id, s.day, c)
            row = categories.get(row_key)
            if row is None:
                row = categories[row_key] = dict.fromkeys(CATEGORY_FIELDS, 0)
            row["items"] += ln.qty
            row["sales_fen"] += ln.amount
            if (order_id, c) in category_orders:
                continue
            category_orders.add((order_id, c))
            row["orders"] += 1
            if member_id is not None:
                _one_more_order(category_members, (s.store_id, s.day, c, member_id))
    category_refunds: set[tuple[int, int]] = set()
    for rl in refund_lines:
        store_id, day = refunded[rl.refund_id]
        for c in paths.get(rl.product_id, ()):
            row = _category_row(out, store_id, day, c)
            row["refunds_fen"] += rl.amount_fen
            if (rl.refund_id, c) not in category_refunds:
                category_refunds.add((rl.refund_id, c))
                row["refunds"] += 1


def _one_more_order(members: dict[Any, dict[str, int]], key: Any) -> None:
    """Count one more order on a member's row (made when new)."""
    member = members.get(key)
    if member is None:
        members[key] = {"orders": 1}
    else:
        member["orders"] += 1


def _category_row(out: Summary, store_id: int, day: date, category_id: int) -> dict[str, int]:
    key = (store_id, day, category_id)
    row = out.categories.get(key)
    if row is None:
        row = out.categories[key] = dict.fromkeys(CATEGORY_FIELDS, 0)
    return row


def _keys_in(model: Any, keys: Sequence[tuple[int, date]]) -> Any:
    return tuple_(model.store_id, model.day).in_(sorted(set(keys)))


async def read(session: AsyncSession, out: Summary, keys: Sequence[tuple[int, date]]) -> None:
    """The stored rows of these store days into `out` (the shape `add` gives)."""
    for c in (await session.scalars(select(CategoryDay).where(_keys_in(CategoryDay, keys)))).all():
        out.categories[(c.store_id, c.day, c.category_id)] = {
            f: getattr(c, f) for f in CATEGORY_FIELDS
        }
    cm = CategoryMember
    for m in (await session.execute(select(cm).where(_keys_in(cm, keys)))).scalars().all():
        out.category_members[(m.store_id, m.day, m.category_id, m.member_id)] = {"orders": m.orders}
    pm = ProductMember
    for p in (await session.execute(select(pm).where(_keys_in(pm, keys)))).scalars().all():
        out.product_members[(p.store_id, p.day, p.product_id, p.member_id)] = {"orders": p.orders}


async def delete_days(session: AsyncSession, keys: Sequence[tuple[int, date]]) -> None:
    for model in MODELS:
        await session.execute(
            delete(model).where(_keys_in(model, keys)).execution_options(synchronize_session=False)
        )


async def write(session: AsyncSession, summary: Summary) -> None:
    """Insert the rows of `summary` (its store days' old rows deleted by `delete_days`)."""
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (
            CategoryDay,
            [
                {"store_id": s, "day": d, "category_id": c, **r}
                for (s, d, c), r in summary.categories.items()
            ],
        ),
        (
            CategoryMember,
            [
                {"store_id": s, "day": d, "category_id": c, "member_id": m, **r}
                for (s, d, c, m), r in summary.category_members.items()
            ],
        ),
        (
            ProductMember,
            [
                {"store_id": s, "day": d, "product_id": p, "member_id": m, **r}
                for (s, d, p, m), r in summary.product_members.items()
            ],
        ),
    ]
    for model, new in rows:
        for i in range(0, len(new), 500):
            await session.execute(insert(model), new[i : i + 500])


async def built(session: AsyncSession) -> bool:
    """Whether the tables hold every summarised day (false after upgrading a database that
    had summaries, until `selfmart rebuild-analytics`)."""
    found = await session.scalar(select(RefreshState.name).where(RefreshState.name == STATE))
    return found is not None


async def mark_built(session: AsyncSession) -> None:
    if not await built(session):
        session.add(
            RefreshState(name=STATE, last_event_id=0, days_refreshed=0, refreshed_at=utcnow())
        )
        await session.flush()
