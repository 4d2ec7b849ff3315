"""The sales summaries: a store's local day recomputed from its raw orders and refunds.

One function (`compute`) says what every summary row holds; the refresh job, the rebuild, the
live tail of the statistics and `selfmart check-analytics` all use it, so a summary row is by
construction what the raw data says for its store and day.

What counts (docs/analytics.md):
- a sale is an order with a payment (`paid_at`) that was not cancelled or closed, counted on the
  local day of `paid_at` in its store's zone, for its `total_fen`;
- a refund is a succeeded refund of such an order, counted on the local day it went through
  (`completed_at`), for its `amount_fen`; by product, through its refund lines;
- items are units sold less units taken off the bill before payment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import scoped_days
from selfmart.kit.time import local_day_bounds
from selfmart.models import (
    HourCell,
    MemberDay,
    Order,
    OrderLine,
    Product,
    ProductDay,
    Refund,
    RefundLine,
    SalesDay,
    Store,
)

#: Orders in these states were never a sale (a late payment of a closed order is given back).
NOT_SALES = ("cancelled", "closed")
#: Rows read per IN (...) list.
CHUNK = 900

Key = tuple[int, date]
Row = dict[str, int]

SALES_FIELDS = (
    "orders",
    "sales_fen",
    "items",
    "member_orders",
    "member_sales_fen",
    "refunds",
    "refunds_fen",
)
PRODUCT_FIELDS = ("orders", "quantity", "sales_fen", "refund_qty", "refunds_fen", "refunds")
MEMBER_FIELDS = ("orders", "sales_fen")
HOUR_FIELDS = ("orders", "sales_fen")


@dataclass
class Summary:
    """Summary rows keyed by their primary keys; `keys` are the store days it covers (a store
    day with no sale and no refund has no rows: zeros, not gaps, are the reader's job)."""

    keys: set[Key] = field(default_factory=set)
    sales: dict[Key, Row] = field(default_factory=dict)
    #: (store, day, product) -> row, with "category_id" (or -1 for none)
    products: dict[tuple[int, date, int], Row] = field(default_factory=dict)
    members: dict[tuple[int, date, int], Row] = field(default_factory=dict)
    hours: dict[tuple[int, date, int, str], Row] = field(default_factory=dict)
    #: (store, day, category) -> the category's subtree (scoped_days)
    categories: dict[tuple[int, date, int], Row] = field(default_factory=dict)
    #: (store, day, category, member) and (store, day, product, member) -> {"orders": n}
    category_members: dict[tuple[int, date, int, int], Row] = field(default_factory=dict)
    product_members: dict[tuple[int, date, int, int], Row] = field(default_factory=dict)


def _row(fields: Sequence[str]) -> Row:
    return dict.fromkeys(fields, 0)


def _get_row(rows: dict[Any, Row], key: Any, fields: Sequence[str]) -> Row:
    """The row of `key`, made (zeros) only when it is new."""
    row = rows.get(key)
    if row is None:
        row = rows[key] = dict.fromkeys(fields, 0)
    return row


def _runs(days: Iterable[date]) -> Iterator[tuple[date, date]]:
    """Consecutive days as (first, last) runs, at most 31 days each."""
    first: date | None = None
    last: date | None = None
    for d in sorted(set(days)):
        if first is not None and last is not None and d == last + timedelta(days=1):
            if (d - first).days < 31:
                last = d
                continue
        if first is not None and last is not None:
            yield first, last
        first = last = d
    if first is not None and last is not None:
        yield first, last


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


async def store_zones(
    session: AsyncSession, store_ids: Iterable[int] | None = None
) -> dict[int, str]:
    stmt = select(Store.id, Store.timezone)
    if store_ids is not None:
        stmt = stmt.where(Store.id.in_(list(store_ids)))
    return {r.id: r.timezone or "Asia/Shanghai" for r in (await session.execute(stmt)).all()}


async def compute(session: AsyncSession, keys: Iterable[Key], *, scoped: bool = True) -> Summary:
    """Every summary row of the given store days, from the raw orders and refunds; without
    the category days and the product and category members when not `scoped` (the live tail
    of rankings, mixes and heatmaps, which read none of them: they are nearly half the work)."""
    out = Summary(keys=set(keys))
    if not out.keys:
        return out
    by_store: dict[int, list[date]] = defaultdict(list)
    for store_id, day in out.keys:
        by_store[store_id].append(day)
    zones = await store_zones(session, by_store)
    tzs = {s: ZoneInfo(zones.get(s, "Asia/Shanghai")) for s in by_store}
    runs: list[Run] = []
    for store_id, days in by_store.items():
        for first, last in _runs(days):
            start, _ = local_day_bounds(first, tzs[store_id])
            _, end = local_day_bounds(last, tzs[store_id])
            runs.append((store_id, start, end))
    # Every store's runs in the same few statements (the live tail of a chain is a day of
    # each store: one query for all of them, not one per store).
    for i in range(0, len(runs), RUNS_PER_QUERY):
        await _compute_runs(session, out, tzs, runs[i : i + RUNS_PER_QUERY], scoped)
    return out


#: (store, first instant, end instant) of consecutive local days
Run = tuple[int, datetime, datetime]
#: Store-day runs read per statement (OR-ed conditions).
RUNS_PER_QUERY = 100


async def _compute_runs(
    session: AsyncSession, out: Summary, tzs: dict[int, ZoneInfo], runs: list[Run], scoped: bool
) -> None:
    # Core execution on the session's connection: these are plain column rows (27k lines for
    # 50 store days at 10M lines a year), and the ORM's row processing was a fifth of the time.
    conn = await session.connection()
    orders = (
        await conn.execute(
            select(
                Order.id,
                Order.store_id,
                Order.paid_at,
                Order.total_fen,
                Order.member_id,
                Order.payment_method,
            ).where(
                or_(
                    *(
                        and_(Order.store_id == s, Order.paid_at >= start, Order.paid_at < end)
                        for s, start, end in runs
                    )
                ),
                Order.status.not_in(NOT_SALES),
            )
        )
    ).all()
    order_day: dict[int, date] = {}
    order_store: dict[int, int] = {}
    order_member: dict[int, int | None] = {}
    for o in orders:
        assert o.paid_at is not None
        store_id = o.store_id
        local = o.paid_at.astimezone(tzs[store_id])
        day = local.date()
        if (store_id, day) not in out.keys:
            continue
        order_day[o.id] = day
        order_store[o.id] = store_id
        order_member[o.id] = o.member_id
        s = _get_row(out.sales, (store_id, day), SALES_FIELDS)
        s["orders"] += 1
        s["sales_fen"] += o.total_fen
        if o.member_id is not None:
            s["member_orders"] += 1
            s["member_sales_fen"] += o.total_fen
            m = _get_row(out.members, (store_id, day, o.member_id), MEMBER_FIELDS)
            m["orders"] += 1
            m["sales_fen"] += o.total_fen
        hour = (store_id, day, local.hour, o.payment_method or "unknown")
        h = _get_row(out.hours, hour, HOUR_FIELDS)
        h["orders"] += 1
        h["sales_fen"] += o.total_fen

    lines: list[Any] = []
    ids = list(order_day)
    for chunk in _chunks(ids):
        lines.extend(
            (
                await conn.execute(
                    select(
                        OrderLine.order_id,
                        OrderLine.product_id,
                        (OrderLine.quantity - OrderLine.cancelled_qty).label("qty"),
                        (OrderLine.amount_fen - OrderLine.cancelled_fen).label("amount"),
                    ).where(OrderLine.order_id.in_(chunk))
                )
            ).all()
        )

    refunds = (
        await conn.execute(
            select(
                Refund.id,
                Refund.store_id,
                Refund.amount_fen,
                func.coalesce(Refund.completed_at, Refund.created_at).label("at"),
            )
            .join(Order, Order.id == Refund.order_id)
            .where(
                Refund.status == "succeeded",
                Order.status.not_in(NOT_SALES),
                or_(
                    *(
                        and_(
                            Refund.store_id == s,
                            or_(
                                and_(Refund.completed_at >= start, Refund.completed_at < end),
                                and_(
                                    Refund.completed_at.is_(None),
                                    Refund.created_at >= start,
                                    Refund.created_at < end,
                                ),
                            ),
                        )
                        for s, start, end in runs
                    )
                ),
            )
        )
    ).all()
    refund_day: dict[int, date] = {}
    refund_store: dict[int, int] = {}
    for r in refunds:
        at = r.at if isinstance(r.at, datetime) else datetime.fromisoformat(str(r.at))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        store_id = r.store_id
        day = at.astimezone(tzs[store_id]).date()
        if (store_id, day) not in out.keys:
            continue
        refund_day[r.id] = day
        refund_store[r.id] = store_id
        s = out.sales.setdefault((store_id, day), _row(SALES_FIELDS))
        s["refunds"] += 1
        s["refunds_fen"] += r.amount_fen
    refund_lines: list[Any] = []
    for chunk in _chunks(list(refund_day)):
        refund_lines.extend(
            (
                await conn.execute(
                    select(
                        RefundLine.refund_id,
                        OrderLine.product_id,
                        RefundLine.quantity,
                        RefundLine.amount_fen,
                    )
                    .join(OrderLine, OrderLine.id == RefundLine.order_line_id)
                    .where(RefundLine.refund_id.in_(chunk))
                )
            ).all()
        )

    product_ids = sorted({ln.product_id for ln in lines} | {ln.product_id for ln in refund_lines})
    category: dict[int, int | None] = {}
    for chunk in _chunks(product_ids):
        for prod in (
            await conn.execute(select(Product.id, Product.category_id).where(Product.id.in_(chunk)))
        ).all():
            category[prod.id] = prod.category_id

    seen: set[tuple[int, int]] = set()
    for ln in lines:
        day = order_day[ln.order_id]
        store_id = order_store[ln.order_id]
        out.sales[(store_id, day)]["items"] += ln.qty
        p = _product_row(out, store_id, day, ln.product_id, category)
        if (ln.order_id, ln.product_id) not in seen:
            seen.add((ln.order_id, ln.product_id))
            p["orders"] += 1
        p["quantity"] += ln.qty
        p["sales_fen"] += ln.amount
    product_refunds: set[tuple[int, int]] = set()
    for rl in refund_lines:
        day = refund_day[rl.refund_id]
        store_id = refund_store[rl.refund_id]
        p = _product_row(out, store_id, day, rl.product_id, category)
        p["refund_qty"] += rl.quantity
        p["refunds_fen"] += rl.amount_fen
        if (rl.refund_id, rl.product_id) not in product_refunds:
            product_refunds.add((rl.refund_id, rl.product_id))
            p["refunds"] += 1
    if not scoped:
        return
    scoped_days.add(
        out,
        await scoped_days.category_paths(session, product_ids),
        lines,
        {o: scoped_days.Sold(order_store[o], order_day[o], order_member[o]) for o in order_day},
        refund_lines,
        {r: (refund_store[r], refund_day[r]) for r in refund_day},
    )


def _product_row(
    out: Summary, store_id: int, day: date, product_id: int, category: dict[int, int | None]
) -> Row:
    key = (store_id, day, product_id)
    row = out.products.get(key)
    if row is None:
        row = _row(PRODUCT_FIELDS)
        cat = category.get(product_id)
        row["category_id"] = -1 if cat is None else cat
        out.products[key] = row
    return row


def rows_table(
    postgres: bool, name: str, cols: Sequence[Any], rows: Sequence[Sequence[Any]]
) -> Any:
    """A table of the given rows to join in a statement. On PostgreSQL one array parameter per
    column, unnested, so that the statement is compiled once and cached whatever the rows (a
    VALUES list is compiled again on every request); on SQLite a VALUES list (a CTE, or an
    empty select when there are no rows)."""
    if postgres:
        return (
            func.unnest(
                *(
                    bindparam(f"{name}_{c.name}", [r[i] for r in rows], type_=ARRAY(c.type))
                    for i, c in enumerate(cols)
                )
            )
            .table_valued(*cols)
            .render_derived(name=name)
        )
    if not rows:
        return select(*(null().cast(c.type).label(c.name) for c in cols)).where(false()).cte(name)
    return values(*cols, name=name).data([tuple(r) for r in rows]).cte(name)


def live_days(postgres: bool, keys: Iterable[Key], zones: dict[int, str]) -> Any:
    """A table of the store days, one (store_id, day, start, end) row each: the local day's
    bounds in UTC in the store's zone (DST-safe), to join orders and refunds to."""
    spans = []
    for store_id, day in sorted(keys):
        start, end = local_day_bounds(day, ZoneInfo(zones.get(store_id) or "Asia/Shanghai"))
        spans.append((store_id, day.isoformat(), start, end))
    at_type = Order.__table__.c.paid_at.type
    cols: tuple[Any, ...] = (
        column("store_id", Integer),
        column("day", String),
        column("start", at_type),
        column("end", at_type),
    )
    return rows_table(postgres, "live_days", cols, spans)


def refunded_on(k: Any) -> Any:
    """Join condition: a succeeded refund of the store day `k` (on the local day it went
    through; one not marked completed on the day it was made)."""
    return and_(
        Refund.store_id == k.c.store_id,
        Refund.status == "succeeded",
        or_(
            and_(Refund.completed_at >= k.c.start, Refund.completed_at < k.c.end),
            and_(
                Refund.completed_at.is_(None),
                Refund.created_at >= k.c.start,
                Refund.created_at < k.c.end,
            ),
        ),
    )


async def compute_sales(
    session: AsyncSession, keys: Iterable[Key], zones: dict[int, str] | None = None
) -> Summary:
    """The store-day and member-day rows of the given store days (no product or hour rows),
    by the same definitions as `compute` but summed by the database in one statement: each
    store day is a (store, day, start, end) row of a table of its local day's bounds in UTC
    (DST-safe; arrays unnested on PostgreSQL, VALUES on SQLite), joined to the orders and
    refunds in that range. What the sales statistics' live tail needs, without reading the
    days' order lines: a day's items are its orders' `item_count` (units less those taken off
    the bill, kept by the order as its lines change; `selfmart check-analytics` holds it to
    the lines), so each day's orders are read once by index and no line is."""
    out = Summary(keys=set(keys))
    if not out.keys:
        return out
    if zones is None or not {s for s, _ in out.keys} <= set(zones):
        zones = await store_zones(session, {s for s, _ in out.keys})
    postgres = session.get_bind().dialect.name == "postgresql"
    k = live_days(postgres, out.keys, zones)
    # Each live day's sold orders. On PostgreSQL a LATERAL subquery kept whole by OFFSET 0 (a
    # plain subquery is pulled up into the join), so that every day is an index range scan of
    # orders (store_id, paid_at): joined plainly, the planner hashes the whole orders table
    # against the 50 days.
    day_orders = select(Order.id, Order.total_fen, Order.member_id, Order.item_count).where(
        Order.store_id == k.c.store_id,
        Order.paid_at >= k.c.start,
        Order.paid_at < k.c.end,
        Order.status.not_in(NOT_SALES),
    )
    if postgres:
        o: Any = day_orders.offset(0).lateral("o")
        on: Any = true()
    else:
        o = Order.__table__
        on = and_(*day_orders.whereclause.clauses)  # type: ignore[union-attr]
    # Read once (a materialized CTE), summed per day and per member.
    sold = (
        select(k.c.store_id, k.c.day, o.c.total_fen, o.c.member_id, o.c.item_count)
        .select_from(k)
        .join(o, on)
        .cte("sold")
        .prefix_with("MATERIALIZED")
    )
    member_total = case((sold.c.member_id.is_not(None), sold.c.total_fen), else_=0)

    def part(tag: str, member: Any, *figures: Any, source: Any = k) -> Any:
        return select(
            literal(tag, String).label("tag"),
            source.c.store_id,
            source.c.day,
            member.label("member_id"),
            *(cast(f, BigInteger).label(f"v{i}") for i, f in enumerate(figures)),
        ).select_from(source)

    no_member = null().cast(Integer)
    zero = literal(0)
    stmt = union_all(
        part(
            "orders",
            no_member,
            func.count(),
            func.sum(sold.c.total_fen),
            func.count(sold.c.member_id),
            func.sum(member_total),
            func.sum(sold.c.item_count),
            source=sold,
        ).group_by(sold.c.store_id, sold.c.day),
        part("refunds", no_member, func.count(), func.sum(Refund.amount_fen), zero, zero, zero)
        .join(Refund, refunded_on(k))
        .join(Order, and_(Order.id == Refund.order_id, Order.status.not_in(NOT_SALES)))
        .group_by(k.c.store_id, k.c.day),
        part("member", sold.c.member_id, func.count(), func.sum(sold.c.total_fen), zero, zero,
             zero, source=sold)
        .where(sold.c.member_id.is_not(None))
        .group_by(sold.c.store_id, sold.c.day, sold.c.member_id),
    )  # fmt: skip
    days: dict[str, date] = {}
    for tag, store_id, day_text, member_id, *figures in (await session.execute(stmt)).all():
        day = days.get(day_text) or days.setdefault(day_text, date.fromisoformat(str(day_text)))
        v = [int(x or 0) for x in figures]
        if tag == "member":
            out.members[(store_id, day, member_id)] = {"orders": v[0], "sales_fen": v[1]}
            continue
        row = out.sales.setdefault((store_id, day), _row(SALES_FIELDS))
        if tag == "orders":
            row["orders"], row["sales_fen"] = v[0], v[1]
            row["member_orders"], row["member_sales_fen"] = v[2], v[3]
            row["items"] = v[4]
        else:
            row["refunds"], row["refunds_fen"] = v[0], v[1]
    return out


# --- reading and writing stored rows -------------------------------------------------------


def key_condition(model: Any, keys: Iterable[Key]) -> Any:
    """(store_id, day) IN (...): one expanding parameter, so the statement's compiled form is
    cached whatever the keys (an OR per store was built and compiled anew every time)."""
    return tuple_(model.store_id, model.day).in_(sorted(set(keys)))


def excluding(model: Any, keys: Iterable[Key]) -> Any:
    """A WHERE condition leaving out the given store days (the live tail replaces them).

    The live days are a handful of dates (today, perhaps yesterday) while the rows read span
    months: `day NOT IN (those dates)` settles almost every row with one or two comparisons, and
    only a row of a live date is compared with every live (store, day) pair. Written as the
    bare pair test, each of a year's rows went through one comparison per live store (50 ORs),
    which made a category's live year 0.9 s at 10M lines."""
    keys = list(keys)
    if not keys:
        return and_(True)
    days = sorted({day for _, day in keys})
    return or_(model.day.not_in(days), not_(key_condition(model, keys)))


async def stored(session: AsyncSession, keys: Iterable[Key]) -> Summary:
    """The summary rows stored for these store days, in the shape `compute` returns."""
    out = Summary(keys=set(keys))
    if not out.keys:
        return out
    batches = [sorted(out.keys)[i : i + 200] for i in range(0, len(out.keys), 200)]
    for batch in batches:
        for s in (
            await session.scalars(select(SalesDay).where(key_condition(SalesDay, batch)))
        ).all():
            out.sales[(s.store_id, s.day)] = {f: getattr(s, f) for f in SALES_FIELDS}
        for p in (
            await session.scalars(select(ProductDay).where(key_condition(ProductDay, batch)))
        ).all():
            row = {f: getattr(p, f) for f in PRODUCT_FIELDS}
            row["category_id"] = -1 if p.category_id is None else p.category_id
            out.products[(p.store_id, p.day, p.product_id)] = row
        for m in (
            await session.scalars(select(MemberDay).where(key_condition(MemberDay, batch)))
        ).all():
            out.members[(m.store_id, m.day, m.member_id)] = {
                f: getattr(m, f) for f in MEMBER_FIELDS
            }
        for h in (
            await session.scalars(select(HourCell).where(key_condition(HourCell, batch)))
        ).all():
            out.hours[(h.store_id, h.day, h.hour, h.payment_method)] = {
                f: getattr(h, f) for f in HOUR_FIELDS
            }
        await scoped_days.read(session, out, batch)
    return out


async def replace(session: AsyncSession, summary: Summary) -> None:
    """Store `summary` in place of whatever the tables held for its store days."""
    keys = sorted(summary.keys)
    for i in range(0, len(keys), 200):
        batch = keys[i : i + 200]
        for model in (SalesDay, ProductDay, MemberDay, HourCell):
            await session.execute(
                delete(model)
                .where(key_condition(model, batch))
                .execution_options(synchronize_session=False)
            )
        await scoped_days.delete_days(session, batch)
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (SalesDay, [{"store_id": s, "day": d, **r} for (s, d), r in summary.sales.items()]),
        (
            ProductDay,
            [
                {
                    "store_id": s,
                    "day": d,
                    "product_id": p,
                    **r,
                    "category_id": None if r["category_id"] == -1 else r["category_id"],
                }
                for (s, d, p), r in summary.products.items()
            ],
        ),
        (
            MemberDay,
            [
                {"store_id": s, "day": d, "member_id": m, **r}
                for (s, d, m), r in summary.members.items()
            ],
        ),
        (
            HourCell,
            [
                {"store_id": s, "day": d, "hour": h, "payment_method": pm, **r}
                for (s, d, h, pm), r in summary.hours.items()
            ],
        ),
    ]
    for model, new in rows:
        for i in range(0, len(new), 500):
            await session.execute(insert(model), new[i : i + 500])
    await scoped_days.write(session, summary)


async def days_of_orders(session: AsyncSession, order_ids: Iterable[int]) -> set[Key]:
    """The store days an order's figures fall on: the day it was paid and its refunds' days.
    One statement per chunk of ids (the payments and the refunds, each with its store's zone)."""
    ids = sorted(set(order_ids))
    if not ids:
        return set()
    keys: set[Key] = set()
    for chunk in _chunks(ids):
        paid = (
            select(Order.store_id, Order.paid_at.label("at"), Store.timezone)
            .join(Store, Store.id == Order.store_id)
            .where(Order.id.in_(chunk), Order.paid_at.is_not(None))
        )
        refunded = (
            select(
                Refund.store_id,
                func.coalesce(Refund.completed_at, Refund.created_at).label("at"),
                Store.timezone,
            )
            .join(Store, Store.id == Refund.store_id)
            .where(Refund.order_id.in_(chunk), Refund.status == "succeeded")
        )
        result: Result[Any] = await session.execute(union_all(paid, refunded))
        for r in result.all():
            keys.add((r.store_id, local_day(r.at, r.timezone)))
    return keys


def local_day(at: Any, zone: str | None) -> date:
    moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(zone or "Asia/Shanghai")).date()


async def all_days(session: AsyncSession, store_ids: Sequence[int] | None = None) -> set[Key]:
    """Every store day with a sale or a refund in the raw data (of these stores only)."""
    zones = await store_zones(session)
    keys: set[Key] = set()
    sold = select(Order.store_id, Order.paid_at).where(
        Order.paid_at.is_not(None), Order.status.not_in(NOT_SALES)
    )
    refunded = select(
        Refund.store_id, func.coalesce(Refund.completed_at, Refund.created_at).label("at")
    ).where(Refund.status == "succeeded")
    if store_ids is not None:
        sold = sold.where(Order.store_id.in_(store_ids))
        refunded = refunded.where(Refund.store_id.in_(store_ids))
    async for o in await session.stream(sold):
        keys.add((o.store_id, local_day(o.paid_at, zones.get(o.store_id))))
    async for r in await session.stream(refunded):
        keys.add((r.store_id, local_day(r.at, zones.get(r.store_id))))
    return keys


async def stored_days(session: AsyncSession, store_ids: Sequence[int] | None = None) -> set[Key]:
    """Every store day some summary table holds a row of (of these stores only)."""
    keys: set[Key] = set()
    for model in (SalesDay, ProductDay, MemberDay, HourCell, *scoped_days.MODELS):
        stmt = select(model.store_id, model.day).distinct()
        if store_ids is not None:
            stmt = stmt.where(model.store_id.in_(store_ids))
        for r in (await session.execute(stmt)).all():
            keys.add((r.store_id, r.day))
    return keys
