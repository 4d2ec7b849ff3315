"""Keeping the summaries: the incremental refresh, the rebuild from scratch, and the check.

The refresh follows the orders' change feed (order_events: every payment, refund, cancel and
close writes one) from a high-water mark, and recomputes whole store days, so running it twice
or in two processes at once gives the same rows. Nothing is added to the intake's hot path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from selfmart.analytics import bulk, member_counts, months, scoped_days, summaries
from selfmart.analytics.summaries import Key, Summary
from selfmart.kit.time import utcnow
from selfmart.models import (
    HourCell,
    MemberDay,
    Order,
    OrderEvent,
    OrderLine,
    ProductDay,
    RefreshState,
    SalesDay,
    SalesMonth,
    Store,
)

log = logging.getLogger(__name__)

STATE = "sales"
#: The high-water mark stays this far behind the newest change: a transaction that wrote its
#: change (and took its event id) earlier but commits later is still read by the next run.
OVERLAP = timedelta(minutes=10)
#: Change-feed rows read per batch.
BATCH = 5000


async def _state(session: AsyncSession, *, lock: bool) -> RefreshState:
    stmt = select(RefreshState).where(RefreshState.name == STATE)
    if lock:
        # One refresh at a time: two would delete and insert the same days.
        stmt = stmt.with_for_update()
    state = await session.scalar(stmt)
    if state is None:
        state = RefreshState(name=STATE, last_event_id=0, days_refreshed=0)
        session.add(state)
        await session.flush()
        if lock:
            state = await session.scalar(stmt)
            assert state is not None
    return state


async def high_water(session: AsyncSession) -> int:
    value = await session.scalar(
        select(RefreshState.last_event_id).where(RefreshState.name == STATE)
    )
    return int(value or 0)


async def pending_days(
    session: AsyncSession, after_event_id: int | None = None
) -> tuple[set[Key], int, int]:
    """Store days changed after the mark (the stored one when `after_event_id` is None, read
    in the same statement as the first events): (days, the newest event id read, the newest
    event id old enough to become the next mark)."""
    feed = await read_feed(session, after_event_id)
    cutoff = utcnow() - OVERLAP
    last = settled = feed.mark
    fresh = False
    for event_id, _, occurred_at in feed.events:
        last = event_id
        fresh = fresh or occurred_at > cutoff
        if not fresh:
            settled = event_id
    order_ids = {order_id for _, order_id, _ in feed.events}
    return await summaries.days_of_orders(session, order_ids), last, settled


@dataclass
class Feed:
    """The change feed after a mark: the mark, and each event after it as (id, order id,
    occurred at), in id order."""

    mark: int
    events: list[tuple[int, int, Any]]
    #: whether the reading transaction has written nothing (PostgreSQL: no transaction id
    #: assigned), so that everything it read is committed; None when not asked
    clean: bool | None = None


#: The first statement of `read_feed` (it is always the same): built once.
_FEED: dict[tuple[bool, bool], Any] = {}


def _feed_after_mark(postgres: bool, ask_clean: bool) -> Any:
    events = select(OrderEvent.id, OrderEvent.order_id, OrderEvent.occurred_at)
    """The stored mark joined to the events after it: one row with no event when there is
    none, so the mark is known either way."""
    extra: list[Any] = []
    if ask_clean and postgres:
        extra = [func.pg_current_xact_id_if_assigned().is_(None).label("clean")]
    m = (
        select(func.coalesce(func.max(RefreshState.last_event_id), 0).label("mark"), *extra)
        .where(RefreshState.name == STATE)
        .subquery()
    )
    after = events.where(OrderEvent.id > m.c.mark).order_by(OrderEvent.id).limit(BATCH)
    e: Any
    if postgres:
        # The batch taken inside a LATERAL: joined plainly, PostgreSQL cannot know the mark,
        # plans for a third of the feed, sorted, and (past its JIT cost threshold, at a few
        # million events) compiles the statement on every request.
        e = after.lateral("e")
        joined = m.outerjoin(e, true())
    else:
        e = events.subquery("e")
        joined = m.outerjoin(e, e.c.id > m.c.mark)
    return (
        select(e.c.id, e.c.order_id, e.c.occurred_at, *m.c)
        .select_from(joined)
        .order_by(e.c.id)
        .limit(BATCH)
    )


async def read_feed(
    session: AsyncSession, after_event_id: int | None = None, *, ask_clean: bool = False
) -> Feed:
    """Every event after the mark (the stored one when `after_event_id` is None, read in the
    same statement as the first batch). `ask_clean` (PostgreSQL) also asks, in the same
    statement, whether this transaction has written anything."""
    postgres = session.get_bind().dialect.name == "postgresql"
    last = after_event_id
    feed = Feed(mark=after_event_id or 0, events=[])
    while True:
        if last is None:
            stmt: Any = _FEED.get((postgres, ask_clean))
            if stmt is None:
                stmt = _FEED[(postgres, ask_clean)] = _feed_after_mark(postgres, ask_clean)
        else:
            stmt = (
                select(OrderEvent.id, OrderEvent.order_id, OrderEvent.occurred_at)
                .where(OrderEvent.id > last)
                .order_by(OrderEvent.id)
                .limit(BATCH)
            )
        rows = (await session.execute(stmt)).all()
        if last is None:
            last = feed.mark = int(rows[0].mark)
            if ask_clean and postgres:
                feed.clean = bool(rows[0].clean)
            rows = [r for r in rows if r.id is not None]
        for r in rows:
            feed.events.append((r.id, r.order_id, r.occurred_at))
            last = r.id
        if len(rows) < BATCH:
            break
    return feed


async def events_between(
    session: AsyncSession, after: int, upto: int, *, limit: int
) -> list[tuple[int, int]]:
    """(id, order id) of the change-feed events after one mark up to another (at most
    `limit`, the first)."""
    rows = await session.execute(
        select(OrderEvent.id, OrderEvent.order_id)
        .where(OrderEvent.id > after, OrderEvent.id <= upto)
        .order_by(OrderEvent.id)
        .limit(limit)
    )
    return [(int(e), int(o)) for e, o in rows.all()]


async def refresh(session: AsyncSession) -> int:
    """Recompute the store days changed since the last run; returns how many it recomputed.

    On a database summarised before the category and member tables existed (migration
    ana_0007 leaves them empty there), the first refresh rebuilds every summary once, so an
    operator who upgraded gets the new figures without running the rebuild by hand."""
    if not await scoped_days.built(session):
        log.warning("analytics: the category and member summaries were never built; rebuilding")
        return await rebuild(session)
    state = await _state(session, lock=True)
    keys, _, settled = await pending_days(session, state.last_event_id)
    restating = await restating_stores(session)
    if restating:
        # A store's time zone changed: each of its days moves; its rows keyed by the old
        # local days go and those of the new ones are written (with the months and member
        # counts of both).
        log.info("analytics: restating stores %s in their new time zones", restating)
        keys |= await restated_days(session, restating)
        await session.execute(
            delete(RefreshState).where(RefreshState.name.in_([_restate(s) for s in restating]))
        )
    for batch in _batches(sorted(keys)):
        await summaries.replace(session, await summaries.compute(session, batch))
    await months.recount(session, keys)
    await member_counts.recount(session, keys)
    state.last_event_id = settled
    state.refreshed_at = utcnow()
    state.days_refreshed = len(keys)
    await session.flush()
    return len(keys)


#: analytics_refresh_state rows naming a store to restate (its time zone changed)
RESTATE = "restate:"


def _restate(store_id: int) -> str:
    return f"{RESTATE}{store_id}"


async def restate_store(session: AsyncSession, store_id: int) -> None:
    """Have the next refresh restate every summary of the store: its time zone changed, so
    each of its local days (and what falls on it) is another. Called by the stores service in
    the transaction that changes the zone; the refresh job runs within a minute."""
    name = _restate(store_id)
    if await session.get(RefreshState, name) is None:
        session.add(RefreshState(name=name, last_event_id=0, days_refreshed=0))
        await session.flush()


async def restating_stores(session: AsyncSession) -> list[int]:
    """The stores whose summaries wait to be restated in their new time zone."""
    names = await session.scalars(
        select(RefreshState.name).where(RefreshState.name.startswith(RESTATE, autoescape=True))
    )
    return sorted(int(n.removeprefix(RESTATE)) for n in names)


async def restated_days(session: AsyncSession, store_ids: list[int]) -> set[Key]:
    """The stores' days as stored (in the old zone) and as they are now (in the new one)."""
    return await summaries.stored_days(session, store_ids) | await summaries.all_days(
        session, store_ids
    )


async def rebuild(session: AsyncSession) -> int:
    """Throw every summary away and compute them all again from the raw orders."""
    state = await _state(session, lock=True)
    # Read the mark first: changes made while this runs are picked up by the next refresh.
    newest = int(await session.scalar(select(func.max(OrderEvent.id))) or 0)
    for model in (SalesDay, SalesMonth, ProductDay, MemberDay, HourCell, *scoped_days.MODELS):
        await session.execute(delete(model).execution_options(synchronize_session=False))
    if session.get_bind().dialect.name == "postgresql":
        # Set-based in the database: the same rows, without reading every line into Python.
        keys = await bulk.write_all(session)
    else:
        keys = await summaries.all_days(session)
        for batch in _batches(sorted(keys)):
            await summaries.replace(session, await summaries.compute(session, batch))
    await months.recount(session, keys)
    await member_counts.rebuild(session, keys)
    await scoped_days.mark_built(session)
    await session.execute(
        delete(RefreshState).where(RefreshState.name.startswith(RESTATE, autoescape=True))
    )
    state.last_event_id = newest
    state.refreshed_at = utcnow()
    state.days_refreshed = len(keys)
    await session.flush()
    return len(keys)


def _batches(keys: list[Key], size: int = 400) -> list[list[Key]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


@dataclass(frozen=True)
class Difference:
    table: str
    store_id: int
    day: date
    #: the rest of the row's key (product, member, hour and method), "" for a store day
    key: str
    column: str
    stored: int
    expected: int


@dataclass
class CheckResult:
    differences: list[Difference]
    #: store days changed since the last refresh, which the check leaves to the next one
    pending: int
    checked: int
    #: the category days and the product and category members were never built from the
    #: orders summarised before migration ana_0007 (run `selfmart rebuild-analytics`)
    scoped_unbuilt: bool = False


async def check(session: AsyncSession) -> CheckResult:
    """Recompute every summarised store day from the raw orders and name each difference."""
    mark = await high_water(session)
    pending, _, _ = await pending_days(session, mark)
    # A store whose time zone changed waits for the refresh to restate it, like a changed day.
    restating = await restating_stores(session)
    if restating:
        pending |= await restated_days(session, restating)
    keys = (await summaries.all_days(session) | await summaries.stored_days(session)) - pending
    out: list[Difference] = []
    raw_days: dict[Key, summaries.Row] = {}
    scoped = await scoped_days.built(session)
    for batch in _batches(sorted(keys)):
        expected = await summaries.compute(session, batch)
        have = await summaries.stored(session, batch)
        if not scoped:
            # Not built yet: the check says so once instead of a line per missing row.
            for s in (have, expected):
                s.categories, s.category_members, s.product_members = {}, {}, {}
                for row in s.products.values():
                    row["refunds"] = 0
        out.extend(compare(have, expected))
        raw_days.update(expected.sales)
    # Month rows against the raw orders' days; a month with a day changed since the last
    # refresh is left to the refresh, like the day.
    unsettled = months.months_of(pending)
    out.extend(
        compare_months(
            {k: v for k, v in (await months.stored(session)).items() if k not in unsettled},
            {k: v for k, v in months.expected(raw_days).items() if k not in unsettled},
        )
    )
    if await member_counts.built(session):
        periods = member_counts.periods_of(keys | pending)
        out.extend(
            compare_counts(
                await member_counts.stored(session, periods),
                await member_counts.expected(session, periods),
            )
        )
    out.extend(await item_counts(session))
    return CheckResult(
        differences=out, pending=len(pending), checked=len(keys), scoped_unbuilt=not scoped
    )


async def item_counts(session: AsyncSession) -> list[Difference]:
    """Sold orders whose `item_count` is not their lines' units less those taken off the bill:
    the live tail sums a day's items from it (`summaries.compute_sales`), the stored days from
    the lines."""
    units = func.coalesce(func.sum(OrderLine.quantity - OrderLine.cancelled_qty), 0)
    rows = (
        await session.execute(
            select(Order.id, Order.store_id, Order.paid_at, Order.item_count, Store.timezone,
                   units.label("units"))
            .join(Store, Store.id == Order.store_id)
            .outerjoin(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.paid_at.is_not(None), Order.status.not_in(summaries.NOT_SALES))
            .group_by(Order.id, Order.store_id, Order.paid_at, Order.item_count, Store.timezone)
            .having(Order.item_count != units)
            .order_by(Order.id)
        )
    ).all()  # fmt: skip
    return [
        Difference(
            table="orders",
            store_id=r.store_id,
            day=summaries.local_day(r.paid_at, r.timezone),
            key=f"order {r.id}",
            column="item_count",
            stored=int(r.item_count),
            expected=int(r.units),
        )
        for r in rows
    ]


def compare(have: Summary, expected: Summary) -> list[Difference]:
    out: list[Difference] = []
    tables: list[
        tuple[
            str, dict[tuple[object, ...], dict[str, int]], dict[tuple[object, ...], dict[str, int]]
        ]
    ] = [
        ("analytics_sales_days", dict(have.sales), dict(expected.sales)),  # type: ignore[arg-type]
        ("analytics_product_days", dict(have.products), dict(expected.products)),  # type: ignore[arg-type]
        ("analytics_member_days", dict(have.members), dict(expected.members)),  # type: ignore[arg-type]
        ("analytics_hour_cells", dict(have.hours), dict(expected.hours)),  # type: ignore[arg-type]
    ]
    tables += [
        (table, dict(getattr(have, attr)), dict(getattr(expected, attr)))
        for table, attr in scoped_days.TABLES
    ]
    for table, got, want in tables:
        for key in sorted(set(got) | set(want), key=str):
            a, b = got.get(key, {}), want.get(key, {})
            for column in sorted(set(a) | set(b)):
                if a.get(column, 0) != b.get(column, 0):
                    store_id, day, *rest = key
                    assert isinstance(store_id, int)
                    assert isinstance(day, date)
                    out.append(
                        Difference(
                            table=table,
                            store_id=store_id,
                            day=day,
                            key="/".join(str(x) for x in rest),
                            column=column,
                            stored=a.get(column, 0),
                            expected=b.get(column, 0),
                        )
                    )
    return out


def compare_months(
    have: dict[months.MonthKey, summaries.Row], expected: dict[months.MonthKey, summaries.Row]
) -> list[Difference]:
    """Stored month rows against the sums of the raw orders' days."""
    out: list[Difference] = []
    for store_id, month in sorted(set(have) | set(expected)):
        a, b = have.get((store_id, month), {}), expected.get((store_id, month), {})
        out.extend(
            Difference(
                table="analytics_sales_months",
                store_id=store_id,
                day=month,
                key="",
                column=column,
                stored=a.get(column, 0),
                expected=b.get(column, 0),
            )
            for column in summaries.SALES_FIELDS
            if a.get(column, 0) != b.get(column, 0)
        )
    return out


def compare_counts(
    have: dict[member_counts.CountKey, int], expected: dict[member_counts.CountKey, int]
) -> list[Difference]:
    """Stored distinct-member counts against the member days (store 0 is the chain)."""
    return [
        Difference(
            table="analytics_member_counts",
            store_id=store_id,
            day=start,
            key=kind,
            column="members",
            stored=have.get((store_id, kind, start), 0),
            expected=expected.get((store_id, kind, start), 0),
        )
        for store_id, kind, start in sorted(set(have) | set(expected))
        if have.get((store_id, kind, start), 0) != expected.get((store_id, kind, start), 0)
    ]
